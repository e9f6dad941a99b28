"""Runs: config resolution, data reading, the training engine, scoring, reports and comparisons."""
