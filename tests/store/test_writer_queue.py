"""SQLite writers take turns in a queue (thread lock + flock) instead of SQLite's sleeping busy handler."""

import threading
import time

from xinglin.store.db import _WriterQueue


def test_writers_take_turns_and_nesting_is_allowed(tmp_path):
    queue = _WriterQueue(str(tmp_path / "x.db.lock"))
    order: list[str] = []
    queue.enter()
    queue.enter()  # the same thread again: re-entrant

    def other_writer():
        queue.enter()
        order.append("other")
        queue.leave()

    t = threading.Thread(target=other_writer)
    t.start()
    time.sleep(0.2)
    order.append("first")  # the other writer is still waiting
    queue.leave()
    time.sleep(0.1)
    assert order == ["first"]  # one leave of two: still held
    queue.leave()
    t.join(timeout=5)
    assert order == ["first", "other"]


def test_a_second_queue_on_the_same_file_waits_like_another_process(tmp_path):
    path = str(tmp_path / "x.db.lock")
    first, second = _WriterQueue(path), _WriterQueue(path)  # separate open files, as two workers have
    first.enter()
    got = threading.Event()

    def other_process():
        second.enter()
        got.set()
        second.leave()

    t = threading.Thread(target=other_process)
    t.start()
    assert not got.wait(0.3)
    first.leave()
    assert got.wait(5)
    t.join(timeout=5)
