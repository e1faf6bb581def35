"""Benchmarks: printed figures with the command that reproduces them (BENCHMARKS.md)."""
