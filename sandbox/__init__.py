"""The offline world certauth runs in for the demo, tests and benchmarks (never deployed)."""
