"""End-to-end tests through the sandbox host."""
