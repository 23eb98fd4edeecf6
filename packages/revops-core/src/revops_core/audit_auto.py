"""Automatic audit checkpoints: every N entries, every T seconds, and at shutdown.

`automatic_checkpoints(runtime)` wraps a running server (see `entrypoint.run`). A background thread
sleeps until `audit_checkpoint_every_seconds` pass or this process has appended
`audit_checkpoint_every_entries` entries — the append path only bumps a counter, it never signs —
then signs, stores and publishes a checkpoint if the head moved (`checkpoint_and_publish`). On exit
(and on SIGTERM, which becomes SystemExit so the exit runs) one last checkpoint is made.

The vault is read once per process, when the first checkpoint is due; a key that does not match
the pinned public key is refused, logged, and retried at the next tick (never silently used).
Only the standard library is imported here: a stdio server must answer its handshake before
SQLAlchemy is loaded.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from revops_core.audit import AuditCheckpoint
    from revops_core.db import Database
    from revops_core.server import Runtime
    from revops_core.settings import Settings

from revops_core.logs import get_logger  # already loaded by the entry point (structlog only)

log = get_logger("revops.audit.checkpointer")


class Checkpointer:
    """Makes checkpoints when they are due; `start()` runs the thread, `stop()` makes the last one."""

    def __init__(self, settings: Settings, database: Callable[[], Database]) -> None:
        self.settings = settings
        self._database = database
        self.every_entries = settings.audit_checkpoint_every_entries
        self.every_seconds = settings.audit_checkpoint_every_seconds
        self._pending = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._key: Ed25519PrivateKey | None = None
        self._thread: threading.Thread | None = None
        self._listening = False
        self.made: list[AuditCheckpoint] = []  # the latest checkpoints this process made
        self.last_error: str | None = None

    # ------------------------------------------------------------------ the append hot path

    def note_appended(self, count: int) -> None:
        """Called by `audit.append` on the appending thread: count, and wake the thread at N."""
        self._pending += count  # unlocked: an approximate count is enough, the thread reads the head
        if self._pending >= self.every_entries:
            self._pending = 0
            self._wake.set()

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_now(self) -> AuditCheckpoint | None:
        """Sign, store and publish a checkpoint if the head moved since the last one; else None."""
        from revops_core.audit_checkpoint import checked_signing_key, checkpoint_and_publish

        with self._lock:
            db = self._database()
            if self._key is None:
                if not self._head_moved(db):
                    return None  # never read the vault (nor pin a key) for an empty or signed log
                self._key = checked_signing_key(db, self.settings)
            checkpoint, _ = checkpoint_and_publish(db, self.settings, signing_key=self._key, only_if_new=True)
            if checkpoint is not None:
                self.made.append(checkpoint)
                del self.made[:-100]  # a long-running server keeps only the latest
                log.info("audit.checkpoint_made", seq=checkpoint.seq)
            return checkpoint

    def _head_moved(self, db: Database) -> bool:
        from sqlalchemy import select

        from revops_core.audit import AuditCheckpoint, chain_tip

        table = AuditCheckpoint.__table__  # type: ignore[attr-defined]  # set by SQLModel
        with db.session() as s:
            seq, head = chain_tip(s)
            last = s.execute(select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).first()
        return seq > 0 and (last is None or (int(last[0]), str(last[1])) != (seq, head))

    def _safe_checkpoint(self, reason: str) -> None:
        try:
            self.checkpoint_now()
            self.last_error = None
        except Exception as exc:  # never take the server down; say so loudly, retry next tick
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("audit.checkpoint_failed", reason=reason, error=self.last_error)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="revops-audit-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from revops_core import audit  # in the thread: the server's start-up never waits for it

        audit.add_append_listener(self.note_appended)
        self._listening = True
        while not self._stopping.is_set():
            woke = self._wake.wait(self.every_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                break
            self._safe_checkpoint("entries" if woke else "timer")

    def stop(self) -> None:
        """Stop the thread, then make the shutdown checkpoint (on the caller's thread)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self._listening:
            from revops_core import audit

            audit.remove_append_listener(self.note_appended)
        self._safe_checkpoint("shutdown")


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def automatic_checkpoints(runtime: Runtime) -> Iterator[Checkpointer]:
    """Run automatic checkpoints while the block runs a server; the last one on the way out.

    SIGTERM (when still at its default) becomes SystemExit, so a stopped server (uvicorn re-raises
    the signal after draining, Claude Desktop stops stdio servers with it) checkpoints before it goes.
    """
    checkpointer = Checkpointer(runtime.settings, lambda: runtime.db)
    previous: Any = None
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    checkpointer.start()
    try:
        yield checkpointer
    finally:
        checkpointer.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
