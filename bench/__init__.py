"""Benchmarks (not tests): `python -m bench.<name>`; results go to bench/results/ (git-ignored)."""
