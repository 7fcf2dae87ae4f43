"""Benchmark of the engine against its floors: bare spawns, a trivial route. Run with `python -m bench`."""
