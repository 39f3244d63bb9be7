"""Synthetic Marcus installations (logs, JSON state, SQLite databases) for demos and tests."""
