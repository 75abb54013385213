"""Privacy: how long location history is kept, and who sees a worker's position when."""
