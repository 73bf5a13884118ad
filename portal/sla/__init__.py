"""Deadlines counted honestly: wall-clock or working-calendar time, in the unit's zone."""
