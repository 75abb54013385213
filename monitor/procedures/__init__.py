"""Standard operating procedures: the checklist an operator follows for each kind of alert."""
