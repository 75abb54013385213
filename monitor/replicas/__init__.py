"""Replicas in a shared group: their heartbeats in the store, and which have gone silent."""
