"""Benchmarks: real intermediate features and the harnesses that measure codecs on them."""
