"""Benchmarks: figures printed for people to read, never asserted by tests."""
