"""Organisations, teams and the workers Vigil watches over."""
