"""Load scenarios and benchmarks of Chat4All (`make bench`, or `uv run python -m bench`)."""
