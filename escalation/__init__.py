"""Escalation: policies, durable steps, and notification channels (Twilio, webhooks)."""
