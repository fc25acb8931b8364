"""atoma-conformance: the conformance and fuzz test suite for Atoma's confidential compute API."""

__version__ = "0.1.0"
