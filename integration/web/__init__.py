"""Flask blueprints."""
