"""Scenario files: the schema, the loader and sweep expansion."""
