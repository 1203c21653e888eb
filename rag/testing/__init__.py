"""Helpers for tests and benchmarks: a tiny model in bge-m3's exact on-disk format."""
