"""Prefect flows of Seneca Lake and the `seneca` command line."""
