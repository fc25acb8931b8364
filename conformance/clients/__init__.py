"""Client certification: judge any client of the protocol against the mock node (docs/clients.md)."""
