"""What the service serves to browsers itself, whatever extensions are loaded: its icon and
the API's documentation page (/docs, Swagger UI vendored, no other site needed)."""
