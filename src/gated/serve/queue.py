"""The server's workers and the bounded queue in front of them.

Model work runs on a pool of threads, one per core, each with one torch
thread: requests beyond what the pool works on at once wait their turn, up to
``waiting`` of them; past that a request is refused at once (the app answers
503 with Retry-After) rather than left to time out. Everything runs on one
event loop, so counting needs no lock.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor


class Busy(Exception):
    """The queue is full: come back in a moment."""


class WorkQueue:
    def __init__(self, workers: int, waiting: int) -> None:
        self.workers, self.waiting = workers, waiting
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gated-serve")
        self.pending = 0  # running plus waiting
        self.refused = 0

    async def run(self, function, *args):
        """``function(*args)`` on a worker, when one is free; Busy when too many are waiting already."""
        if self.pending >= self.workers + self.waiting:
            self.refused += 1
            raise Busy()
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.pending -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
