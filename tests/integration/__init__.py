"""Integration tests: against Azurite and/or the Azure simulator."""
