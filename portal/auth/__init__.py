"""Users, sessions, login, and roles per business unit (CORE-01)."""
