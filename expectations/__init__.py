"""Great Expectations suites as package data: one `<dataset>.json` each, plus cross_dataset.json."""
