"""Thin Prefect tasks over the warehouse library."""
