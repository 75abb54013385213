"""Evidence: references to audio recordings from devices, and the checked upload of their bytes."""
