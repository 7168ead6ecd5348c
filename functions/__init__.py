"""certauth blueprints: one per workflow, thin adapters over ``shared/``."""
