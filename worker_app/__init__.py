"""The workers' phone app: an installable web app that is a protocol-v1 device like any other,
and what serves it (the app itself, enrolment, the MQTT-over-WebSocket relay, Web Push)."""
