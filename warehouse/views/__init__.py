"""DuckDB views over the committed files, and what analyst SQL may run against them."""
