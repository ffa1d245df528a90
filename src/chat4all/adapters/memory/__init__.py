"""In-process adapters for the embedded profile: real implementations, not test doubles."""
