"""Benchmarks: each module prints a Markdown section with ratios against a peer."""
