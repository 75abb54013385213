"""Alerts: the state machine, priorities, the timeline, and the operator actions on them."""
