"""Benchmarks, each runnable as ``python -m tools.bench.<name>``; none is imported by the server."""
