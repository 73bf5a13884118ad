"""Tests of the notice-board plugin (run with the rest of the suite)."""
