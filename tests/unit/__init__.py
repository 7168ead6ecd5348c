"""Unit tests: in-process, no services."""
