"""The Vigil service: configuration, store, MQTT ingest, alert and visit state, REST API, CLI."""
