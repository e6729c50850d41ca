"""The kernels' matrix product (engines/blas.py): MKL through LLVM symbols, checked against numpy."""

import ctypes
import threading

import numpy as np
import pytest
import torch

from gated.engines import blas

SHAPES = [(16, 256, 1024), (1, 64, 512), (5, 7, 3), (2, 1, 9), (64, 128, 1)]


def _views(x: np.ndarray):
    """The same values as a row-major array, a column-major one, and a column slice of a wider array."""
    wide = np.zeros((x.shape[0], x.shape[1] + 3), x.dtype)
    wide[:, 1 : 1 + x.shape[1]] = x
    return {"C": x, "F": np.asfortranarray(x), "slice": wide[:, 1 : 1 + x.shape[1]]}


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_matmul_equals_numpy_for_every_layout(dtype, tol, m, k, n):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    for name_a, view_a in _views(a).items():
        for name_b, view_b in _views(b).items():
            out = np.full((m, n), np.nan, dtype)
            blas.matmul(view_a, view_b, out)
            scale = np.abs(a).max() * np.abs(b).max() * k
            assert np.abs(out - expected).max() <= tol * scale, (name_a, name_b)


def test_an_empty_inner_dimension_gives_zeros_and_empty_outputs_are_left_alone():
    out = np.full((3, 4), np.nan, np.float32)
    blas.matmul(np.empty((3, 0), np.float32), np.empty((0, 4), np.float32), out)
    assert (out == 0).all()
    blas.matmul(np.empty((0, 5), np.float32), np.ones((5, 4), np.float32), np.empty((0, 4), np.float32))


def test_product_allocates_its_result():
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.arange(12, dtype=np.float32).reshape(3, 4)
    result = blas.product(a, b.T.copy().T)
    assert result.flags.c_contiguous and np.array_equal(result, a @ b)


def test_shapes_that_do_not_chain_and_strided_operands_are_refused():
    with pytest.raises(ValueError, match="do not chain"):
        blas.matmul(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32), np.empty((2, 5), np.float32))
    every_other = np.ones((4, 8), np.float32)[:, ::2]  # neither rows nor columns are contiguous
    with pytest.raises(ValueError, match="unit stride"):
        blas.matmul(every_other, np.ones((4, 3), np.float32), np.empty((4, 3), np.float32))


def test_the_same_product_on_many_threads_at_once():
    # The kernels call it from two threads at a time (batch halves, the split LSTM).
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((32, 256)).astype(np.float32), rng.standard_normal((256, 512)).astype(np.float32)
    expected = a @ b
    outs = [np.empty_like(expected) for _ in range(4)]
    threads = [threading.Thread(target=lambda o=o: [blas.matmul(a, b, o) for _ in range(50)]) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for out in outs:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_sizes_past_32_bits_are_refused_before_blas_reads_anything():
    # A row stride of 2**31 elements: never read (the check comes first), so no memory behind it is needed.
    a = np.zeros((1, 3), np.float32)
    far = np.lib.stride_tricks.as_strided(a, shape=(2, 3), strides=(2**31 * 4, 4))
    with pytest.raises(ValueError, match="32-bit"):
        blas.matmul(far, np.ones((3, 2), np.float32), np.empty((2, 2), np.float32))


def test_the_library_is_torchs_mkl_where_torch_has_it():
    assert blas.LIBRARY == ("mkl" if torch.backends.mkl.is_available() else "scipy")


@pytest.mark.skipif(not torch.backends.mkl.is_available(),
                    reason="MKL's thread setting exists only in a torch built with MKL; without it SciPy's "
                           "single-threaded BLAS runs and there is nothing to give back")
def test_mkls_thread_setting_is_given_back():
    set_local = blas.torch_library().MKL_Set_Num_Threads_Local
    set_local.restype, set_local.argtypes = ctypes.c_int, [ctypes.c_int]
    set_local(3)
    blas.matmul(np.ones((4, 8), np.float32), np.ones((8, 2), np.float32), np.empty((4, 2), np.float32))
    assert set_local(0) == 3  # matmul asked for one thread for its call only, then put 3 back
    before = torch.get_num_threads()
    blas.matmul(np.ones((4, 8), np.float32), np.ones((8, 2), np.float32), np.empty((4, 2), np.float32))
    assert torch.get_num_threads() == before
