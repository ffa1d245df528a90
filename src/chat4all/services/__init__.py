"""Use cases. Services depend on ports only; the composition root hands them adapters."""
