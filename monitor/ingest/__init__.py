"""MQTT ingest of the device protocol: parsing, routing, batching, replies to devices."""
