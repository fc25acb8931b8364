"""Adapters that put a client behind the adapter contract (conformance.clients.contract)."""
