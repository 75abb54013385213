"""Gateways: other clients' protocols (Traccar Client and OsmAnd trackers, OwnTracks, SMS and
calls to the Vigil number) turned into protocol-v1 messages and handed to ingest
(`Ingest.submit`), so that every rule is applied to them once, in the same place."""
