"""Two threads, one kernel: the pieces a persistent split kernel needs (Diamos et al. 2016).

A persistent kernel runs the whole loop over time on two threads at once, each
owning half of the hidden units and so half of ``W_hh``'s rows; after each step
they meet at a barrier, where each has written its half of the new h, which
both read in the next step. numba has no atomics, so two intrinsics emit
LLVM's: an atomic add (acquire-release) and an acquiring load. The barrier is
a counter that only grows: at step t each thread adds 1 and waits until it
reads 2 (t + 1), so it never needs resetting within a call.

Waiting spins a bounded number of times, then calls ``sched_yield``: on a
machine where other processes hold the cores, the partner may not be running,
and spinning on would only keep it off the core.

:func:`run_pair` runs a kernel's two parts: part 0 on the calling thread, part 1
on one long-lived helper thread. Both parts are numba functions compiled with
``nogil=True``, so they run truly in parallel; the helper needs the GIL only to
pick up its job. ``sync[1]`` is an abort flag: if part 0 fails before its
barriers, its partner stops waiting instead of spinning forever.
"""

from __future__ import annotations

import os
import queue
import threading

import numpy as np
import torch
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

SPINS = 2000  # busy polls before each yield: a few microseconds on a free core
SYNC_SIZE = 16  # counter at 0, abort flag at 1, padding so nothing else shares the cache line


@intrinsic
def atomic_add(typingctx, array, index, value):
    """array[index] += value, atomically (acquire-release); returns the old value. int64 arrays."""
    sig = types.int64(array, index, value)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, ary, [args[1]])
        return builder.atomic_rmw("add", pointer, args[2], "acq_rel")

    return sig, codegen


@intrinsic
def load_acquire(typingctx, array, index):
    """array[index], read with acquire order: what the writer wrote before its release is visible."""
    sig = types.int64(array, index)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, ary, [args[1]])
        return builder.load_atomic(pointer, "acquire", 8)

    return sig, codegen


sched_yield = types.ExternalFunction("sched_yield", types.int32())


@njit(cache=True, nogil=True)
def barrier(sync, parties, arrival):
    """Wait until all ``parties`` have arrived ``arrival`` times (1, 2, ...) in all. False when aborted."""
    atomic_add(sync, 0, 1)
    target = parties * arrival
    spins = 0
    while load_acquire(sync, 0) < target:
        if load_acquire(sync, 1) != 0:
            return False
        spins += 1
        if spins >= SPINS:
            sched_yield()
            spins = 0
    return True


@njit(cache=True, nogil=True)
def abort(sync):
    atomic_add(sync, 1, 1)


def new_sync() -> np.ndarray:
    return np.zeros(SYNC_SIZE, np.int64)


# -- the helper thread ---------------------------------------------------------------------


class _Helper:
    """One daemon thread that runs part 1 of each split call; calls from several threads queue up."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="gated-split-kernel", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            kernel, args, done = self.jobs.get()
            try:
                kernel(*args)
                done.put(None)
            except BaseException as error:  # handed to the caller, which raises it
                abort(args[2])
                done.put(error)


_helper: _Helper | None = None
_helper_lock = threading.Lock()


def _get_helper() -> _Helper:
    global _helper
    with _helper_lock:
        if _helper is None or not _helper.thread.is_alive():
            _helper = _Helper()
    return _helper


def run_pair(kernel, args: tuple) -> None:
    """``kernel(part, 2, sync, *args)`` for part 0 here and part 1 on the helper thread, in parallel."""
    sync = new_sync()
    done: queue.SimpleQueue = queue.SimpleQueue()
    _get_helper().jobs.put((kernel, (1, 2, sync, *args), done))
    try:
        kernel(0, 2, sync, *args)
    except BaseException:
        abort(sync)
        done.get()
        raise
    error = done.get()
    if error is not None:
        raise error


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def two_cores() -> bool:
    """True when splitting a call over two threads can pay: two cores here, and torch allowed two threads.

    torch's thread count is the user's say in how many cores gated may use (torch.set_num_threads(1) means one).
    """
    return _cores() >= 2 and torch.get_num_threads() >= 2


SPLIT_HIDDEN_AT_LEAST = 32  # below, a step is too little work for a barrier
FORCE: bool | None = None  # tests: True splits (and False never does) whatever the machine; None decides per call


def split_pays(hidden: int) -> bool:
    """Split a layer of ``hidden`` units over two threads? Only with enough work per step, two cores
    for gated (:func:`two_cores`) and a free one now.

    On a machine that other processes keep busy the partner thread would wait for a core at every
    barrier: a split kernel measured 2x slower than the single-threaded one at a load of 11 on 2 cores.
    So it splits only while the cores are free (:func:`cores_free`).
    """
    if FORCE is not None:
        return FORCE
    if hidden < SPLIT_HIDDEN_AT_LEAST or not two_cores():
        return False
    return cores_free()


def cores_free() -> bool:
    """No more threads runnable on the machine now than its cores and one (or the load cannot be read).

    The one spare is for this process's own: torch's OpenMP workers spin for a while after each
    product and count as runnable; at a MinGRU's training step a quarter of the reads saw 3 on the
    2-core machine with nothing else running. Busy machines read far more (11-15 on the build machine).
    """
    running = _runnable_threads()
    return running is None or running <= _cores() + 1


_loadavg: int | None = None  # an open descriptor of /proc/loadavg: re-read in place, a few microseconds


def _runnable_threads() -> int | None:
    """The machine's runnable threads now (``/proc/loadavg``'s fourth field), None where it cannot be read.

    Opening the file anew took about 40 us, as much as gated's whole Python around a short call; ``pread``
    on a descriptor kept open re-reads it for a fraction of that.
    """
    global _loadavg
    try:
        if _loadavg is None:
            _loadavg = os.open("/proc/loadavg", os.O_RDONLY)
        return int(os.pread(_loadavg, 128, 0).split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None
