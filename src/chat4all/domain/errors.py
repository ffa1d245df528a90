"""Errors the core raises. Adapters translate driver errors into these; the API maps them to
problem+json."""

from __future__ import annotations


class Chat4AllError(Exception):
    """Base of every error the core raises on purpose."""

    title = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(Chat4AllError):
    title = "Invalid input"


class NotFound(Chat4AllError):
    title = "Not found"


class Conflict(Chat4AllError):
    title = "Conflict"


class AlreadyExists(Conflict):
    title = "Already exists"


class IdempotencyConflict(Conflict):
    """The same idempotency key was used with a different request body."""

    title = "Idempotency key reused with a different request"


class Unauthenticated(Chat4AllError):
    title = "Unauthenticated"


class Forbidden(Chat4AllError):
    title = "Forbidden"


class LimitExceeded(Chat4AllError):
    title = "Limit exceeded"


class RateLimited(LimitExceeded):
    """Too many requests for now: the same request passes after `retry_after` seconds."""

    title = "Too many requests"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(Chat4AllError):
    """A backing store or broker cannot be reached; the request may be retried."""

    title = "Service unavailable"


class TooLarge(LimitExceeded):
    """A body, file or quota past its limit (HTTP 413)."""

    title = "Too large"


class Gone(NotFound):
    """It existed and no longer does (an expired upload: HTTP 410)."""

    title = "Gone"


class ChecksumMismatch(InvalidInput):
    """The bytes do not match the checksum sent with them (tus: HTTP 460)."""

    title = "Checksum mismatch"


class RangeNotSatisfiable(InvalidInput):
    title = "Range not satisfiable"
