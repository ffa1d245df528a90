"""One SQLite file as seen by the event loop: group-committed writes and reads, run on the loop.

Every write job queued while the event loop was busy runs inside its own SAVEPOINT of ONE
transaction, committed once: a thousand small appends cost one COMMIT, and one failing job only
rolls back itself. Callers are answered only after the COMMIT succeeded, so an acknowledged write
is on disk.

The jobs run on the event loop's own thread, not on a thread of their own. A statement on a
warm WAL database takes microseconds, which is less than what handing the GIL between a writer
thread and the loop cost (measured: a fifth of the server's CPU went on those hand-offs). What
can take long, copying the WAL back into the database (a checkpoint, with its fsync), runs on a
background thread instead: automatic checkpoints are off on the loop's connections.

WAL with `synchronous=NORMAL` survives a process crash (kill -9) without losing a committed
transaction; only an OS crash or power loss can drop the last commits, which is the trade we make.
Readers use their own connection: WAL readers do not block the writer, nor the writer them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from chat4all.domain.errors import Chat4AllError, Conflict, Unavailable

T = TypeVar("T")

logger = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT: Final = 5.0  # seconds a statement waits for another process's lock
DEFAULT_MAX_BATCH: Final = 512


def translate_error(e: sqlite3.Error, doing: str) -> Chat4AllError:
    """A driver error as the port error services see. The caller raises it `from e`."""
    if isinstance(e, sqlite3.IntegrityError):
        return Conflict(f"{doing}: {e}")
    # "database is locked", "disk I/O error", "unable to open database file", a closed
    # connection: the store is not usable right now, and the request may be retried.
    return Unavailable(f"{doing}: {e}")


def connect(
    path: Path, *, readonly: bool = False, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT ourselves) with our pragmas."""
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,  # created on its thread, closed from the closing one
        cached_statements=256,
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            conn.close()
            raise sqlite3.OperationalError(f"cannot switch {path} to WAL (mode is {mode})")
        # The checkpointer thread copies the WAL back; never the loop, inside a COMMIT.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("PRAGMA journal_size_limit = 67108864")  # truncate the WAL back to 64 MiB
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -32000")  # 32 MB of page cache per connection
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


@dataclass(slots=True)
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    after_commit: Callable[[], None] | None
    after_rollback: Callable[[], None] | None


CHECKPOINT_INTERVAL: Final = 0.2  # seconds between background checkpoints
# Past this many WAL frames (~64 MiB of 4 KiB pages) the writer checkpoints once itself, between
# two commits: under sustained writes the background checkpoint never catches up with the last
# frame, and SQLite only rewinds the WAL when a checkpoint has. The background thread has copied
# nearly everything by then, so this costs the loop little; without it the WAL grew past 800 MiB
# in a 15 s load, and rewinding it later stalled the loop for 200 ms.
WAL_FRAMES_LIMIT: Final = 16_384


class SQLiteWriter:
    """The single writer of one SQLite file, committing queued jobs in groups.

    A job is a plain function taking the `sqlite3.Connection` and returning a value; it runs on
    the event loop, inside a transaction it must not end, and must be short. `after_commit` runs
    once the job's transaction is durable; `after_rollback` runs when the job's effects were
    undone (its own error, or a failed COMMIT), so in-memory state kept next to the database can
    be marked stale. Use one writer per file and one event loop per writer.
    """

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        max_batch: int,
        busy_timeout: float,
    ) -> None:
        self.path = path
        self._conn = conn
        self._loop = loop
        self._max_batch = max_batch
        self._pending: list[_Job] = []
        self._flush_scheduled = False
        self._closed = False
        self._checkpointer = _Checkpointer(path, busy_timeout)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> SQLiteWriter:
        """Open `path` (created if missing) for writing, and start its checkpointer."""
        path = Path(path)
        try:
            conn = connect(path, busy_timeout=busy_timeout)
        except sqlite3.Error as e:
            raise translate_error(e, f"opening {path}") from e
        writer = cls(path, conn, asyncio.get_running_loop(), max_batch, busy_timeout)
        writer._checkpointer.start()
        return writer

    async def run(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        after_commit: Callable[[], None] | None = None,
        after_rollback: Callable[[], None] | None = None,
    ) -> T:
        """Run `fn` in the next group commit; its value once committed, or its error.

        `sqlite3` errors come back as `Unavailable` (or `Conflict` for integrity errors); other
        errors raised by `fn` come back unchanged. Cancelling the caller does not cancel a job
        already queued: it may still commit, which is why jobs must be idempotent or harmless.
        """
        if self._closed:
            raise Unavailable(f"{self.path.name}: the store is closed")
        future: asyncio.Future[T] = self._loop.create_future()
        self._pending.append(_Job(fn, future, after_commit, after_rollback))
        if not self._flush_scheduled:
            # Everything queued until the loop comes round to this callback commits together.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return await future

    async def close(self) -> None:
        """Commit the jobs already queued, then close the connection and checkpoint."""
        if self._closed:
            return
        self._closed = True
        while self._pending:
            self._flush()
        self._conn.close()
        await asyncio.to_thread(self._checkpointer.stop)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
        if self._pending and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        if batch:
            try:
                _settle(self._commit_batch(batch))
                if self._checkpointer.wal_frames >= WAL_FRAMES_LIMIT:
                    self._checkpointer.wal_frames = _checkpoint(self._conn, "PASSIVE")
            except Exception as e:
                # Not a database error but a bug; answer every caller and keep serving.
                logger.exception("writer batch failed")
                _rollback_quietly(self._conn)
                error = Unavailable(f"{self.path.name}: internal error in the writer")
                error.__cause__ = e
                _settle([(job, error, None) for job in batch])

    def _commit_batch(self, batch: list[_Job]) -> list[tuple[_Job, BaseException | None, Any]]:
        conn = self._conn
        outcomes: list[tuple[_Job, BaseException | None, Any]] = []
        try:
            # IMMEDIATE takes the write lock now (honouring busy_timeout), not at the first write.
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            return self._fail_all(batch, e, "starting a transaction")
        try:
            for job in batch:
                conn.execute("SAVEPOINT job")
                try:
                    value = job.fn(conn)
                except Exception as e:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((job, _as_port_error(e), None))
                    _call_quietly(job.after_rollback)
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((job, None, value))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            # The transaction itself broke (I/O error, full disk, ...): nothing of it is durable.
            _rollback_quietly(conn)
            return self._fail_all(batch, e, "committing")
        return outcomes

    def _fail_all(
        self, batch: list[_Job], e: sqlite3.Error, doing: str
    ) -> list[tuple[_Job, BaseException | None, Any]]:
        outcomes: list[tuple[_Job, BaseException | None, Any]] = []
        for job in batch:
            error = translate_error(e, f"{self.path.name}: {doing}")
            error.__cause__ = e
            outcomes.append((job, error, None))
            _call_quietly(job.after_rollback)
        return outcomes


class _Checkpointer:
    """Copies the WAL back into the database five times a second, on a thread of its own, so
    the fsyncs this takes never stall the event loop (sqlite3 releases the GIL while it works)."""

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self.wal_frames = 0  # the WAL's length at the last checkpoint (read by the writer)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"sqlite-checkpoint:{path.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = connect(self._path, busy_timeout=self._busy_timeout)
        try:
            while not self._stop.wait(CHECKPOINT_INTERVAL):
                self.wal_frames = _checkpoint(conn, "PASSIVE")
            _checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()


def _checkpoint(conn: sqlite3.Connection, mode: str) -> int:
    """Copy WAL frames back into the database; the WAL's length in frames afterwards."""
    try:
        ((_, log_frames, _),) = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
    except sqlite3.Error:
        logger.exception("a %s checkpoint failed; the WAL grows until the next one", mode)
        return 0
    return int(log_frames)


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        # If even ROLLBACK fails, SQLite rolls the transaction back when the file is next opened.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _call_quietly(hook: Callable[[], None] | None) -> None:
    # A broken hook must not stop the writer and leave every later caller hanging.
    if hook is not None:
        try:
            hook()
        except Exception:
            logger.exception("after_rollback hook failed")


def _as_port_error(e: Exception) -> BaseException:
    if isinstance(e, sqlite3.Error):
        error = translate_error(e, "writing")
        error.__cause__ = e
        return error
    return e


def _settle(outcomes: list[tuple[_Job, BaseException | None, Any]]) -> None:
    hooks: dict[Callable[[], None], None] = {}
    for job, error, value in outcomes:
        if error is None:
            if job.after_commit is not None:
                hooks[job.after_commit] = None
            if not job.future.done():  # the caller may have been cancelled meanwhile
                job.future.set_result(value)
        elif not job.future.done():
            job.future.set_exception(error)
    for hook in hooks:
        hook()


class SQLiteReader:
    """A read-only connection for queries, run on the event loop like the writer's jobs: short
    indexed reads of a WAL database, which never wait on the writer."""

    def __init__(self, path: str | Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)`; `sqlite3` errors come back as port errors."""
        if self._closed:
            raise Unavailable(f"{self.path.name}: the store is closed")
        try:
            if self._conn is None:
                self._conn = connect(self.path, readonly=True, busy_timeout=self._busy_timeout)
            return fn(self._conn)
        except sqlite3.Error as e:
            raise translate_error(e, f"{self.path.name}: reading") from e

    async def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None
