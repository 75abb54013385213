"""A whole fleet at once: workers and their devices from one file, checked whole first."""
