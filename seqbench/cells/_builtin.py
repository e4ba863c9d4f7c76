"""Registers the cells of every built-in cell module (each ends with a `CELLS` dict)."""

from seqbench.cells import (
    _REGISTRY,
    attention,
    classic,
    delta,
    gated,
    matrix,
    rwkv,
    ssm,
    xlstm,
)

for _module in (classic, xlstm, ssm, gated, matrix, delta, rwkv, attention):
    _REGISTRY.register_all(_module.CELLS)
