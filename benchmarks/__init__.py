"""Benchmarks of lightning-auxprune (run with ``make bench``)."""
