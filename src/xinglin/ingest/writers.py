"""Writing chunks in other processes: the store's per-resource work (R4 validation, index extraction, the inserts)
of several chunks at once, while the ingesting process plans the next ones.

    writers = Writers(store, principal, processes=2)
    writers.submit(seq, after, items, updates)  -> a future: ("ok", None) | ("invalid", index, element) | ("aborted",)
    writers.abort_through(seq); writers.close()

Each chunk is written in one unit of work, as :func:`xinglin.ingest.service.ingest` writes it in-process:
``create_many`` of its new resources (validated, nothing written unless all are valid), then the updates of
Patients that earlier chunks wrote. Chunks commit strictly in order: a writer that has created its resources
waits until the chunk before (``after``) has committed before it updates anything and commits. So what is in
the database is always the chunks of a prefix of the file, as with one writer -- a run killed with ``kill -9``
(the writers die with the process that started them) leaves nothing a later chunk refers to missing, and the
next run continues after that prefix. A chunk the store refuses is rolled back, and so is every chunk after it
(they may refer to what it would have created): the ingesting process plans them again.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

_state: dict[str, Any] = {}  # in a writer process: store, principal, shared counters


class Writers:
    def __init__(self, store: Any, principal: Any, processes: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # (not fork: the engine's connections must not be shared)
        self.committed = ctx.Value("q", 0)  # sequence number of the last chunk committed
        self.aborted = ctx.Value("q", 0)  # chunks up to this number give up instead of committing
        self.cond = ctx.Condition(self.committed.get_lock())
        url = store.engine.url.render_as_string(hide_password=False)
        self.pool = ProcessPoolExecutor(
            processes,
            mp_context=ctx,
            initializer=_init,
            initargs=(url, store.settings, principal, self.committed, self.aborted, self.cond),
        )
        self.processes = processes
        for _ in range(processes):  # start them now, while the first chunk is planned
            self.pool.submit(_started)

    def submit(self, seq: int, after: int, items: list[tuple[str, dict, str | None]], updates: list[tuple[str, dict]]):
        """Chunk ``seq``, to commit once chunk ``after`` has (0: none). The bodies are serialised here, now:
        the caller may change them afterwards."""
        return self.pool.submit(_write, seq, after, orjson.dumps(items), orjson.dumps(updates))

    def abort_through(self, seq: int) -> None:
        """Chunks up to ``seq`` that have not committed roll back."""
        with self.cond:
            self.aborted.value = max(self.aborted.value, seq)
            self.cond.notify_all()

    def committed_through(self) -> int:
        return self.committed.value

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def die_with_parent() -> None:
    """Makes this helper process die with the process that started it, kill -9 included (Linux)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _init(url: str, settings: Any, principal: Any, committed: Any, aborted: Any, cond: Any) -> None:
    die_with_parent()  # an orphaned writer's transaction rolls back
    from xinglin.store.db import make_engine
    from xinglin.store.repository import Store

    engine = make_engine(url, pool_size=1)
    _state.update(store=Store(engine, settings), principal=principal, committed=committed, aborted=aborted, cond=cond)


def _started() -> None:
    time.sleep(0.05)  # (so that the next one starts another process)


class _Aborted(Exception):
    pass


def _wait_turn(seq: int, after: int) -> None:
    cond, committed, aborted = _state["cond"], _state["committed"], _state["aborted"]
    with cond:
        while committed.value < after and aborted.value < seq:
            cond.wait(1.0)
        if aborted.value >= seq:
            raise _Aborted


def _write(seq: int, after: int, items_json: bytes, updates_json: bytes) -> tuple:
    from xinglin.core.errors import XinglinError

    store, principal = _state["store"], _state["principal"]
    items = [(t, body, rid) for t, body, rid in orjson.loads(items_json)]
    updates = orjson.loads(updates_json)
    started = time.perf_counter()
    try:
        with store.unit_of_work(principal) as repo:
            if items:
                repo.create_many(items)
            _wait_turn(seq, after)
            for pid, body in updates:
                repo.update("Patient", pid, body)
    except _Aborted:
        return ("aborted",)
    except XinglinError as exc:  # (rolled back, refusals recorded, as in-process)
        index = getattr(exc, "item_index", None)
        if index is None or not items:
            raise
        return ("invalid", index, exc.element or "", exc.en)
    cond = _state["cond"]
    with cond:
        _state["committed"].value = seq
        cond.notify_all()
    return ("ok", time.perf_counter() - started)
