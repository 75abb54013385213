"""Simulated ID badges and phone apps speaking the Vigil device protocol v1 over MQTT.

Used by the demo, the test-suite and the benchmarks; it knows only the protocol, not the service.
"""
