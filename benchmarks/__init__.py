"""Benchmarks of ingestion, question latency and the served app under load; see README.md."""
