"""Serving: the HTTP app, its middleware and docs, and batch prediction of files."""
