"""Driver errors turned into chat4all errors, the same way on SQLite and PostgreSQL.

PostgreSQL (asyncpg) says what went wrong with a SQLSTATE and names the constraint a row broke;
SQLite says it in its message. Both are read here, and nowhere else.
"""

from __future__ import annotations

from sqlalchemy import Index, Table, UniqueConstraint
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from chat4all.domain.errors import AlreadyExists, Chat4AllError, Conflict, InvalidInput, Unavailable

# SQLSTATEs (PostgreSQL appendix A) the store treats apart from "unavailable".
_UNIQUE_VIOLATION = "23505"
_FOREIGN_KEY_VIOLATION = "23503"
_DATA_EXCEPTION_CLASS = "22"  # too long, NUL byte, bad encoding, out of range, ...
_TRY_AGAIN = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected


def sqlstate(error: DBAPIError) -> str | None:
    """The SQLSTATE of a PostgreSQL error; None on SQLite."""
    state = getattr(error.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def violates(error: IntegrityError, table: Table, constraint: str) -> bool:
    """True when `error` is a violation of the unique constraint, unique index or primary key
    named `constraint` of `table`.

    asyncpg names the constraint; SQLite names a unique index (`index 'name'`) or the columns
    of a constraint (`table.column, ...`).
    """
    named = getattr(error.orig.__cause__, "constraint_name", None) if error.orig else None
    if isinstance(named, str):
        return named == constraint
    message = str(error.orig).rstrip()
    if f'"{constraint}"' in message:
        return True
    if message.endswith(f"constraint failed: index '{constraint}'"):
        return True
    columns = _constraint_columns(table, constraint)
    if not columns:
        return False
    sqlite_form = ", ".join(f"{table.name}.{column}" for column in columns)
    return message.endswith(f"constraint failed: {sqlite_form}")


def is_foreign_key_violation(error: IntegrityError) -> bool:
    if sqlstate(error) == _FOREIGN_KEY_VIOLATION:
        return True
    return "foreign key" in str(error.orig).lower()


def _is_unique_violation(error: IntegrityError) -> bool:
    if sqlstate(error) == _UNIQUE_VIOLATION:
        return True
    message = str(error.orig).lower()
    return "unique constraint" in message or "duplicate key" in message


def _constraint_columns(table: Table, name: str) -> list[str]:
    """The columns SQLite names for the constraint; [] for a unique index (named instead)."""
    if table.primary_key.name == name:
        return [c.name for c in table.primary_key.columns]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and constraint.name == name:
            return [c.name for c in constraint.columns]
    for index in table.indexes:
        if isinstance(index, Index) and index.unique and index.name == name:
            return []
    raise ValueError(f"{table.name} has no unique constraint or index {name!r}")


def translate(error: SQLAlchemyError) -> Chat4AllError:
    """The chat4all error for a driver error that no transaction function handled itself."""
    if isinstance(error, IntegrityError):
        if is_foreign_key_violation(error):
            return InvalidInput("a referenced row does not exist")
        if _is_unique_violation(error):
            return AlreadyExists(f"the row already exists: {error.orig}")
        return InvalidInput(f"the data breaks a rule of the store: {error.orig}")
    if isinstance(error, DBAPIError):
        state = sqlstate(error) or ""
        if isinstance(error, DataError) or state.startswith(_DATA_EXCEPTION_CLASS):
            return InvalidInput(f"the data does not fit the store: {error.orig}")
        if state in _TRY_AGAIN:
            return Conflict(f"the change collided with a concurrent one; try again: {error.orig}")
        return Unavailable(f"the metadata database is unavailable: {error.orig}")
    if isinstance(error, StatementError) and isinstance(error.orig, ValueError):
        return InvalidInput(str(error.orig))
    return Unavailable(f"the metadata database failed: {error}")
