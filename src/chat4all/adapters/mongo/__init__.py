"""MongoDB adapters (cluster profile): the message store, on PyMongo's async client."""
