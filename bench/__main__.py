"""`python -m bench`: see bench/README.md."""

from bench.cli import run

raise SystemExit(run())
