"""A byte-compatible mock of an Atoma confidential-compute node and proxy, strict by default."""
