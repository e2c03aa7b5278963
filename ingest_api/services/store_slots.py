"""How many originals one API process writes to the evidence store at once.

The API must receive a whole photo before it can store it (the object's key is its SHA-256), so an upload is two
transfers in a row: the body from the witness, then the PUT to the store. A store shares its cores and disks among
the PUTs in flight. When every received photo is written at once, the PUTs of a burst all finish together, their
witnesses' next photos all arrive together, and the store idles while those bodies come in. Admitted a few at a
time, writes finish one after another and each freed slot goes to a photo that has already arrived, so the store
keeps working while other bodies arrive (docs/BENCHMARKS.md, Ingest, Run 9).

The price: a write that stalls keeps its slot until the S3 client gives up on it, so with 4 slots one stuck PUT
takes a quarter of the process's write capacity for that time. Size the slots with the store's tail latency in
mind, not only its cores.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class StoreBusy(Exception):
    """No write slot came free in time: the store is overloaded or not answering."""


class StoreWriteSlots:
    """At most `count` writes in flight (None: no limit). The others wait first come, first served: a freed slot
    is handed to the longest waiter, never taken by a newcomer (a plain semaphore lets late arrivals overtake, and
    one unlucky witness waits seconds longer than the rest). A writer that waits more than `wait_s` seconds gets
    `StoreBusy`. Blocking: the slot is taken on the worker thread that writes."""

    def __init__(self, count: int | None, *, wait_s: float = 60.0) -> None:
        if count is not None and count < 1:
            raise ValueError(f"a store needs at least one write slot, not {count}")
        self.count = count
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._free = count or 0  # unused without a limit
        self._waiting: deque[threading.Event] = deque()

    @classmethod
    def unlimited(cls) -> StoreWriteSlots:
        return cls(None)

    @property
    def waiting(self) -> int:
        """Writers waiting for a slot now."""
        with self._lock:
            return len(self._waiting)

    @contextmanager
    def held(self) -> Iterator[None]:
        if self.count is None:
            yield
            return
        if not self._acquire():
            raise StoreBusy(f"no write slot came free within {self.wait_s:g} s ({self.count} writes in flight)")
        try:
            yield
        finally:
            self._release()

    def _acquire(self) -> bool:
        with self._lock:
            if self._free > 0 and not self._waiting:
                self._free -= 1
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(self.wait_s):
            return True
        with self._lock:
            if turn.is_set():  # handed a slot just as the wait ran out: it is ours
                return True
            self._waiting.remove(turn)
            return False

    def _release(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()  # the slot passes straight to the longest waiter
            else:
                self._free += 1
