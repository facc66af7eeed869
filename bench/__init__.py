"""Cold-start and per-request benchmark of the kit against its peers (`make bench`; see README.md)."""
