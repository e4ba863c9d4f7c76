"""Parallel-scan kernels for linear recurrences (imports only jax).

    from seqbench.kernels import linear_scan, matrix_scan
    h, h_last = linear_scan(a, b, h0=None, *, reverse=False, impl="auto")   # a, b: (..., T, D)
    y, s_last = matrix_scan(q, k, v, log_a=None, s0=None, *, impl="auto")   # S: (..., K, V)
    states, info = nonlinear_scan(step, params, h0, xs, *, method="newton")  # h_t = f(h_{t-1}, x_t)
    states, loss, grads = diagonal_rtrl(coefficients, params, unit_axes, h0, xs, ys, loss_fn)

Shape letters: see `kernels/typing.py`.
"""

from .linear_recurrence import AUTO_IMPL, IMPLS, linear_scan
from .matrix_recurrence import MATRIX_IMPLS, matrix_scan
from .nonlinear_scan import METHODS as NONLINEAR_METHODS
from .nonlinear_scan import Diagnostics, nonlinear_scan
from .rtrl import diagonal_rtrl

__all__ = ["AUTO_IMPL", "Diagnostics", "IMPLS", "MATRIX_IMPLS", "NONLINEAR_METHODS",
           "diagonal_rtrl", "linear_scan", "matrix_scan", "nonlinear_scan"]
