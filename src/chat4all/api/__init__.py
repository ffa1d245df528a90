"""The edges people and systems talk to: REST, the real-time stream (and gRPC, later)."""
