"""Handlers of the peers the benchmark compares with; each runs in its own virtualenv."""
