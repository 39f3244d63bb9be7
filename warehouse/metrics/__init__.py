"""Metric declarations, mergeable histograms and the hourly/daily/monthly rollups."""
