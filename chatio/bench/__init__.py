"""Benchmarks, each runnable as ``python -m chatio.bench.<name>``; none is imported by the server."""
