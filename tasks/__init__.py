"""Thin steps over the warehouse library: Prefect tasks in a Prefect run, plain calls elsewhere."""
