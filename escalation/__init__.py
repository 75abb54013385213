"""Escalation: policies, the durable step scheduler, and notification channels (Twilio, webhooks)."""
