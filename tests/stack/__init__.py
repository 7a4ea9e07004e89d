"""Stack tests: the compose stack built and run for real, driven like a user would."""
