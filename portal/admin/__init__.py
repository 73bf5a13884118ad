"""Admin pages: users and their roles per unit, the unit tree, plugins per unit, settings."""
