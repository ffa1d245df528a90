"""Driver errors turned into chat4all errors, the same way on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Table, UniqueConstraint
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from chat4all.domain.errors import AlreadyExists, Chat4AllError, InvalidInput, Unavailable


def violates(error: IntegrityError, table: Table, constraint: str) -> bool:
    """True when `error` is a violation of the unique or primary key `constraint` of `table`.

    PostgreSQL names the constraint; SQLite names its columns as `table.column, ...`.
    """
    message = str(error.orig)
    if f'"{constraint}"' in message:
        return True
    columns = _constraint_columns(table, constraint)
    if not columns:
        return False
    sqlite_form = ", ".join(f"{table.name}.{column}" for column in columns)
    return message.rstrip().endswith(f"constraint failed: {sqlite_form}")


def is_foreign_key_violation(error: IntegrityError) -> bool:
    message = str(error.orig).lower()
    return "foreign key" in message


def _is_unique_violation(error: IntegrityError) -> bool:
    message = str(error.orig).lower()
    return "unique constraint" in message or "duplicate key" in message


def _constraint_columns(table: Table, name: str) -> list[str]:
    if table.primary_key.name == name:
        return [c.name for c in table.primary_key.columns]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and constraint.name == name:
            return [c.name for c in constraint.columns]
    raise ValueError(f"{table.name} has no unique constraint {name!r}")


def translate(error: SQLAlchemyError) -> Chat4AllError:
    """The chat4all error for a driver error that no transaction function handled itself."""
    if isinstance(error, IntegrityError):
        if is_foreign_key_violation(error):
            return InvalidInput("a referenced row does not exist")
        if _is_unique_violation(error):
            return AlreadyExists(f"the row already exists: {error.orig}")
        return InvalidInput(f"the data breaks a rule of the store: {error.orig}")
    if isinstance(error, DataError):
        return InvalidInput(f"the data does not fit the store: {error.orig}")
    if isinstance(error, DBAPIError):
        return Unavailable(f"the metadata database is unavailable: {error.orig}")
    if isinstance(error, StatementError) and isinstance(error.orig, ValueError):
        return InvalidInput(str(error.orig))
    return Unavailable(f"the metadata database failed: {error}")
