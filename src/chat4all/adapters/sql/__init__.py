"""The metadata store on SQLAlchemy Core: SQLite now, PostgreSQL with the same code."""

from chat4all.adapters.sql.metadata_store import SqlMetadataStore
from chat4all.adapters.sql.migrate import upgrade

__all__ = ["SqlMetadataStore", "upgrade"]
