"""Parallel-scan kernels for linear recurrences (imports only jax).

    from seqbench.kernels import linear_scan, matrix_scan
    h, h_last = linear_scan(a, b, h0=None, *, reverse=False, impl="auto")   # a, b: (..., T, D)
    y, s_last = matrix_scan(q, k, v, log_a=None, s0=None, *, impl="auto")   # S: (..., K, V)

Shape letters: see `kernels/typing.py`.
"""

from .linear_recurrence import AUTO_IMPL, IMPLS, linear_scan
from .matrix_recurrence import MATRIX_IMPLS, matrix_scan

__all__ = ["AUTO_IMPL", "IMPLS", "MATRIX_IMPLS", "linear_scan", "matrix_scan"]
