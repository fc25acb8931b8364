"""Mutation testing of the strict node path (``python -m benchmarks.mutation``; README.md says how and why)."""
