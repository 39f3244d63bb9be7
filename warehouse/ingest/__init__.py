"""Ingest units: JSONL streams, state history, costs.db, and backfill of committed ranges."""
