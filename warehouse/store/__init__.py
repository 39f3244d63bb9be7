"""The store: lake paths, the catalog, and the one write-and-commit path."""
