"""`make load`: a bounded load test of `mcpkit dev` with injected DynamoDB faults (see __main__.py)."""
