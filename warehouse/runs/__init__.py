"""Flow runs as the catalog records them: status, freshness and run summaries."""
