"""certauth test suite (pytest; see pyproject.toml)."""
