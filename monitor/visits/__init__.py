"""Timed visits (the amber timer): deadlines, check-ins, and the overdue alert."""
