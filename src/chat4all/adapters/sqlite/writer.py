"""One SQLite file as seen by the event loop: a writer thread with group commit, and reader threads.

Writes are funnelled through a single thread that owns the only write connection. Every job it
finds queued (up to `max_batch`) runs inside its own SAVEPOINT of ONE transaction, which is then
committed once: a thousand small appends cost one COMMIT, and one failing job only rolls back
itself. Callers are answered only after the COMMIT succeeded, so an acknowledged write is on disk.

WAL with `synchronous=NORMAL` survives a process crash (kill -9) without losing a committed
transaction; only an OS crash or power loss can drop the last commits, which is the trade we make.

Reads run on a small thread pool with one read-only connection per thread, so they never queue
behind writes (WAL readers do not block the writer, nor the writer them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
        # Checkpoint every ~16 MiB of WAL rather than 4 MiB: a group commit dirties hundreds of
        # index pages, and copying them back less often is measurably cheaper (~15%).
        conn.execute("PRAGMA wal_autocheckpoint = 4000")
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


_STOP: Final = object()


class SQLiteWriter:
    """The single writer of one SQLite file, committing queued jobs in groups.

    A job is a plain function taking the `sqlite3.Connection` and returning a value; it runs on
    the writer thread, inside a transaction it must not end. `after_commit` runs on the event loop
    once the job's transaction is durable; `after_rollback` runs on the writer thread when the
    job's effects were undone (its own error, or a failed COMMIT), so in-memory state kept next
    to the database can be marked stale. Use one writer per file and one event loop per writer.
    """

    def __init__(
        self, path: Path, loop: asyncio.AbstractEventLoop, max_batch: int, busy_timeout: float
    ) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._loop = loop
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._lock = threading.Lock()  # makes "not closed, then enqueue" atomic against close()
        self._closed = False
        self._ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._serve, name=f"sqlite-writer:{path.name}", daemon=True
        )

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> SQLiteWriter:
        """Start the writer thread on `path` (created if missing) once its connection is up."""
        writer = cls(Path(path), asyncio.get_running_loop(), max_batch, busy_timeout)
        writer._thread.start()
        await writer._ready
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
        future: asyncio.Future[T] = self._loop.create_future()
        with self._lock:
            if self._closed:
                raise Unavailable(f"{self.path.name}: the store is closed")
            self._queue.put(_Job(fn, future, after_commit, after_rollback))
        return await future

    async def close(self) -> None:
        """Finish the jobs already queued, then stop the thread and close the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    # --- the writer thread ---------------------------------------------------------------

    def _serve(self) -> None:
        try:
            conn = connect(self.path, busy_timeout=self._busy_timeout)
        except sqlite3.Error as e:
            error = translate_error(e, f"opening {self.path}")
            error.__cause__ = e
            with self._lock:
                self._closed = True
            self._loop.call_soon_threadsafe(_settle_ready, self._ready, error)
            return
        self._loop.call_soon_threadsafe(_settle_ready, self._ready, None)
        try:
            stopping = False
            while not stopping:
                batch: list[_Job] = []
                item = self._queue.get()
                while True:
                    if item is _STOP:
                        stopping = True
                        break
                    assert isinstance(item, _Job)
                    batch.append(item)
                    if len(batch) >= self._max_batch:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self._commit_batch_safely(conn, batch)
        finally:
            conn.close()

    def _commit_batch_safely(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        try:
            self._commit_batch(conn, batch)
        except Exception as e:
            # Not a database error but a bug; answer every caller and keep the thread serving.
            logger.exception("writer batch failed")
            _rollback_quietly(conn)
            error = Unavailable(f"{self.path.name}: internal error in the writer")
            error.__cause__ = e
            self._deliver([(job, error, None) for job in batch])

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, BaseException | None, Any]] = []
        try:
            # IMMEDIATE takes the write lock now (honouring busy_timeout), not at the first write.
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self._fail_all(batch, e, "starting a transaction")
            return
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
            self._fail_all(batch, e, "committing")
            return
        self._deliver(outcomes)

    def _fail_all(self, batch: list[_Job], e: sqlite3.Error, doing: str) -> None:
        outcomes: list[tuple[_Job, BaseException | None, Any]] = []
        for job in batch:
            error = translate_error(e, f"{self.path.name}: {doing}")
            error.__cause__ = e
            outcomes.append((job, error, None))
            _call_quietly(job.after_rollback)
        self._deliver(outcomes)

    def _deliver(self, outcomes: list[tuple[_Job, BaseException | None, Any]]) -> None:
        # One wake-up of the event loop per batch, not per job: that is most of the saving.
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(_settle, outcomes)


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        # If even ROLLBACK fails, SQLite rolls the transaction back when the file is next opened.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _call_quietly(hook: Callable[[], None] | None) -> None:
    # A broken hook must not kill the writer thread and leave every later caller hanging.
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


def _settle_ready(ready: asyncio.Future[None], error: BaseException | None) -> None:
    if ready.done():
        return
    if error is None:
        ready.set_result(None)
    else:
        ready.set_exception(error)


class SQLiteReader:
    """Read-only connections, one per pool thread, for queries that must not wait on writes."""

    def __init__(
        self, path: str | Path, threads: int = 2, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix=f"sqlite-reader:{self.path.name}"
        )
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` on a reader thread; `sqlite3` errors come back as port errors."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, fn)
        except RuntimeError as e:  # the executor was shut down
            raise Unavailable(f"{self.path.name}: the store is closed") from e

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = connect(self.path, readonly=True, busy_timeout=self._busy_timeout)
                self._local.conn = conn
                with self._lock:
                    self._connections.append(conn)
            return fn(conn)
        except sqlite3.Error as e:
            raise translate_error(e, f"{self.path.name}: reading") from e

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
