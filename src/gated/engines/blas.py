"""The kernels' matrix product: MKL's gemm from torch's own library, on the calling thread.

Each step of a fused loop makes one small product, ``h @ W_hh^T`` with a few rows of
``h``, and a loop makes hundreds of them. numba's ``np.dot`` hands them to SciPy's
OpenBLAS, which this project loads with one thread (``fused._load_single_threaded_blas``).
On the AMD EPYC build machine (Zen 1, AVX2) that OpenBLAS is slow at exactly these shapes:
(16 x 256) @ (256 x 1024) ran at 10.7 GFLOP/s, where the same product through MKL on one
thread ran at 26.3 (32 rows: 18.8 against 31.0; 4 rows: 7.6 against 15.3; one row: 23.8
against 18.2, so a single row stays with OpenBLAS). The LayerNormLSTM of the Shakespeare
model spent two thirds of its forward pass in these products.

torch's CPU wheels for x86 link MKL into ``libtorch_cpu`` and export its Fortran
``sgemm_``/``dgemm_`` and ``MKL_Set_Num_Threads_Local``. :func:`matmul` calls them
through symbols registered with LLVM (:func:`_register`), so the compiled kernels stay
cacheable: the address is looked up when this module is imported, not baked into the
cache. Each product asks MKL for one thread, only for that call (the old setting comes
back after), because the kernels split work between threads themselves and torch's own
MKL calls on the same thread must keep torch's threads. A torch without MKL (ARM, macOS)
gets SciPy's BLAS under the same names, which is what ``np.dot`` called before.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import numpy as np
from llvmlite import binding, ir
from numba import cfunc, njit, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

# The names the kernels call; each is bound once per process to MKL's function or SciPy's.
SGEMM, DGEMM, ONE_THREAD = "gated_blas_sgemm", "gated_blas_dgemm", "gated_blas_threads"
ROW_SGEMV, ROW_DGEMV = "gated_blas_sgemv", "gated_blas_dgemv"  # SciPy's, for a product of one row
INT32_MAX = 2**31 - 1  # both libraries take 32-bit integers (MKL's LP64 sgemm_, SciPy's cython_blas)


def torch_library() -> ctypes.CDLL | None:
    """torch's own CPU library (already loaded by ``import torch``: this is the same copy), or None."""
    import torch

    try:
        return ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
    except OSError:
        return None


def _torch_mkl() -> tuple[int, int, int] | None:
    """Addresses of sgemm_, dgemm_ and MKL_Set_Num_Threads_Local in torch's library, or None."""
    library = torch_library()
    names = ("sgemm_", "dgemm_", "MKL_Set_Num_Threads_Local")
    try:
        return tuple(ctypes.cast(getattr(library, name), ctypes.c_void_p).value for name in names)
    except AttributeError:  # no library (None has no such attribute either), or one without MKL
        return None


def _load_single_threaded_blas() -> None:
    """Load SciPy's OpenBLAS (which single-row products and a torch without MKL use) with one thread.

    torch's own threads (torch.get_num_threads()) still do everything outside the kernels.
    Inside, the per-step products are small and come hundreds of times per call; there
    OpenBLAS's thread server is a loss, and on a busy machine a disaster: measured on the
    2-core machine while another job ran, one (4 x 256) @ (256 x 1024) product took 7.7 ms
    with OpenBLAS's threads, also after threadpoolctl had limited them to 1, and 0.2 ms
    with OPENBLAS_NUM_THREADS=1 in place when the library loaded. So the variable is set
    just for that load (numpy's own OpenBLAS, loaded earlier, is not affected). If SciPy's
    BLAS was loaded before, it keeps its threads and threadpoolctl limits it to one.
    """
    if _scipy_blas_loaded():
        _limit_scipy_blas()
        return
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import scipy.linalg.cython_blas  # noqa: F401
    finally:
        if before is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = before


def _scipy_blas_loaded() -> bool:
    if "scipy.linalg.cython_blas" in sys.modules or "scipy.linalg" in sys.modules:
        return True
    try:
        with open("/proc/self/maps") as maps:
            return "scipy.libs/libscipy_openblas" in maps.read()
    except OSError:
        return False


def _limit_scipy_blas() -> None:
    try:
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    controller = ThreadpoolController()
    scipy_blas = [lib.filepath for lib in controller.lib_controllers if "scipy.libs" in lib.filepath]
    if scipy_blas:
        controller.select(filepath=scipy_blas).limit(limits=1)


_kept: list = []  # a compiled stand-in must live as long as the kernels that call it


def _register() -> str:
    """Bind the names; returns which library the products of several rows call ("mkl" or "scipy")."""
    _load_single_threaded_blas()
    scipy = {name: get_cython_function_address("scipy.linalg.cython_blas", name)
             for name in ("sgemm", "dgemm", "sgemv", "dgemv")}
    found = _torch_mkl()
    if found is not None:
        (sgemm, dgemm, threads), library = found, "mkl"
    else:
        unchanged = cfunc(types.int32(types.int32))(lambda count: 0)  # SciPy's BLAS already runs on one thread
        _kept.append(unchanged)
        (sgemm, dgemm, threads), library = (scipy["sgemm"], scipy["dgemm"], unchanged.address), "scipy"
    names = {SGEMM: sgemm, DGEMM: dgemm, ONE_THREAD: threads, ROW_SGEMV: scipy["sgemv"], ROW_DGEMV: scipy["dgemv"]}
    for name, address in names.items():
        binding.add_symbol(name, address)
    return library


LIBRARY = _register()


@intrinsic
def _set_threads(typingctx, count):
    """MKL's thread count for this thread's calls (0: back to the global one); returns the old one."""
    sig = types.int32(types.int32)

    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), [ir.IntType(32)]),
                                                  ONE_THREAD)
        return builder.call(function, [args[0]])

    return sig, codegen


def _call_fortran(builder, name: str, pattern: str, values: list, double: bool) -> None:
    """Call the Fortran BLAS routine ``name``, which takes every argument by address.

    ``pattern`` says what each argument is: "c" a letter from a flag (non-zero: "T", else "N"),
    "i" an integer, "p" an address of reals, "1" and "0" the real constants; ``values`` holds
    the run-time values of the c, i and p arguments, in order.
    """
    real = ir.DoubleType() if double else ir.FloatType()
    i8, i32 = ir.IntType(8), ir.IntType(32)
    kinds = {"c": i8.as_pointer(), "i": i32.as_pointer(), "p": real.as_pointer(), "1": real.as_pointer(),
             "0": real.as_pointer()}
    function = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [kinds[c] for c in pattern]), name)

    def on_stack(ty, value):
        slot = cgutils.alloca_once(builder, ty)
        builder.store(value, slot)
        return slot

    given, arguments = iter(values), []
    for c in pattern:
        if c in "10":
            arguments.append(on_stack(real, real(float(c))))
            continue
        value = next(given)
        if c == "c":
            transposed = builder.icmp_signed("!=", value, value.type(0))
            arguments.append(on_stack(i8, builder.select(transposed, i8(ord("T")), i8(ord("N")))))
        elif c == "i":
            arguments.append(on_stack(i32, builder.trunc(value, i32)))
        else:
            arguments.append(builder.inttoptr(value, real.as_pointer()))
    builder.call(function, arguments)


@intrinsic
def _gemm(typingctx, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, like):
    """Fortran ``?gemm_``: c = op(a) op(b), column-major, alpha 1 and beta 0; a, b, c are addresses.

    ``like``: an array whose dtype picks sgemm (float32) or dgemm (float64)."""
    sig = types.void(*[types.int64] * 5, types.intp, types.int64, types.intp, types.int64, types.intp, types.int64,
                     like)
    double = like.dtype == types.float64

    def codegen(context, builder, signature, args):
        _call_fortran(builder, (SGEMM, DGEMM)[double], "cciii1pipi0pi", list(args[:11]), double)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _gemv(typingctx, trans, m, n, a, lda, x, incx, y, like):
    """Fortran ``?gemv_`` (SciPy's): y = op(a) x, a column-major (m, n), y contiguous; addresses as _gemm."""
    sig = types.void(*[types.int64] * 3, types.intp, types.int64, types.intp, types.int64, types.intp, like)
    double = like.dtype == types.float64

    def codegen(context, builder, signature, args):
        one = context.get_constant(types.int64, 1)
        _call_fortran(builder, (ROW_SGEMV, ROW_DGEMV)[double], "cii1pipi0pi", [*args[:8], one], double)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def _layout(x):
    """How BLAS reads the 2-D array x as row-major (R, C): (0, stride of a row) when its rows are
    contiguous, (1, stride of a column) when its columns are, (-1, 0) when neither (a strided view)."""
    rows, cols = x.shape
    item = x.itemsize
    if cols == 1 or x.strides[1] == item:
        lead = x.strides[0] // item if rows > 1 else cols
        if lead >= cols:
            return 0, lead
    if rows == 1 or x.strides[0] == item:
        lead = x.strides[1] // item if cols > 1 else rows
        if lead >= rows:
            return 1, lead
    return -1, 0


@njit(cache=True, nogil=True)
def matmul(a, b, out):
    """out = a @ b for a (M, K), b (K, N) and a C-contiguous out (M, N), on one thread.

    a and b may be row- or column-major views (``w.T`` costs nothing). A row-major product
    is the column-major product of the transposes, ``out^T = b^T a^T``, which is what BLAS is given.
    """
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape[0] != m or out.shape[1] != n:
        raise ValueError("matmul: the shapes do not chain: (M, K) @ (K, N) into (M, N)")
    if m == 0 or n == 0:
        return
    if k == 0:
        for i in range(m):
            for j in range(n):
                out[i, j] = 0
        return
    trans_a, lead_a = _layout(a)
    trans_b, lead_b = _layout(b)
    trans_out, lead_out = _layout(out)
    if trans_a < 0 or trans_b < 0 or trans_out != 0:
        raise ValueError("matmul: every operand needs one unit stride, and out contiguous rows")
    if max(m, n, k, lead_a, lead_b, lead_out) > INT32_MAX:  # BLAS takes 32-bit sizes: never truncate one
        raise ValueError("matmul: a dimension or row stride past 2**31 - 1, more than BLAS's 32-bit sizes hold")
    if m == 1:  # one row (streaming, batch 1): SciPy's OpenBLAS gemv, 23.8 GFLOP/s against MKL's 16.9 here
        step = lead_a if trans_a else a.strides[1] // a.itemsize  # from one of the row's values to the next
        rows, cols = (k, n) if trans_b else (n, k)  # b as BLAS stores it, column-major
        _gemv(trans_b, rows, cols, b.ctypes.data, lead_b, a.ctypes.data, max(step, 1), out.ctypes.data, out)
        return
    before = _set_threads(1)
    _gemm(trans_b, trans_a, n, m, k, b.ctypes.data, lead_b, a.ctypes.data, lead_a, out.ctypes.data, lead_out, out)
    _set_threads(before)


@njit(cache=True, nogil=True)
def product(a, b):
    """a @ b into a new C-contiguous array (:func:`matmul`)."""
    out = np.empty((a.shape[0], b.shape[1]), a.dtype)
    matmul(a, b, out)
    return out
