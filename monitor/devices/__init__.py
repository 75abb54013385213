"""The device registry: badges and phones, their credentials, health and location history."""
