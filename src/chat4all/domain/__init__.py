"""The domain: entities, value objects and rules. Pure Python, no I/O, no framework."""
