"""Places workers visit and the cautions known about them (a dog, a threat, a hazard)."""
