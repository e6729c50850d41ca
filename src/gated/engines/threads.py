"""Who gets a second thread: the rule the fused kernels share, and the pool that runs the halves.

The fused kernels run on the calling thread. Some of their work can use more threads:
the products over all steps (on torch's threads, through torch.mm), the min cells'
passes over time, and the loops that take a range of sequences (two halves of a batch,
``fused_cells._ranges``). :func:`threads` says how many a piece of work gets;
:func:`split_run` runs a kernel on several shares at once, on this thread and a small pool
of Python threads (the kernels release the GIL).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch

PRODUCT_FROM = 2**20  # multiply-adds of one product from which torch's threads take it: about 0.1 ms on one core


def threads(work: int, at_least: int) -> int:
    """How many threads a piece of ``work`` gets: torch's count (the user's say in how many cores
    gated may use), but one when the work is too small to repay waking the others, or when other
    processes keep the cores busy.

    On the idle 2-core machine torch's products on both threads beat numba's BLAS on one at every
    size measured, from T100 B1 I64 H128 (MinGRU training 1.12 ms against 1.28) to T100 B32 I128
    H256 (23.4 ms against 34.3). On the same machine busy with other jobs (load 11-15), waking
    torch's OpenMP workers turned 1.4 ms into 43.6 ms at the small shape; so, as the split LSTM
    does (``persistent_sync.split_pays``), more than one thread only while the cores are free.
    """
    count = torch.get_num_threads()
    if count == 1 or work < at_least:
        return 1
    from .persistent_sync import cores_free

    return count if cores_free() else 1


def split_run(kernel, args: tuple, shares: list[tuple]) -> None:
    """``kernel(*args, *share)`` for every share at once: this thread takes the first, pool threads
    the others (the kernels release the GIL).

    Plain Python threads rather than numba's ``parallel=True``: numba's OpenMP pool is a second
    OpenMP runtime beside torch's, and measured here, once it had run, torch's own GRU training on
    one thread went from 2.2 to 11.4 CPU seconds per call (6.6 to 33.8 s wall).
    """
    pending = [_pool(len(shares) - 1).submit(kernel, *args, *share) for share in shares[1:]]
    try:
        kernel(*args, *shares[0])
    finally:
        for job in pending:
            job.result()  # waits, and raises what the kernel raised there


_executor: ThreadPoolExecutor | None = None
_executor_workers = 0
_executor_lock = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """The pool of :func:`split_run`, made on first use and grown when more threads are asked for."""
    global _executor, _executor_workers
    with _executor_lock:
        if _executor_workers < workers:
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gated-kernel")
            _executor_workers = workers
        return _executor
