"""Seneca Lake: the lake as a plain library, importable and testable without Prefect."""
