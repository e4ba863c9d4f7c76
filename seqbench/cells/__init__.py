"""Cells: recurrent, state-space, linear-attention and attention layers as pure functions.

    cell = seqbench.cells.get("lru", d_hidden=64)
    params = cell.init(key, d_in)
    state = cell.initial_state(params, (batch,))
    state, ys = cell.scan(params, state, xs)
"""

from seqbench.cells.base import Cell, make_cell, param_count, scan_with_steps
from seqbench.cells.flax_adapter import from_flax
from seqbench.registry import Registry

_REGISTRY = Registry("cell")
register = _REGISTRY.register
names = _REGISTRY.names
get = _REGISTRY.get
hparams = _REGISTRY.hparams

# Cell modules register themselves on import (kept last: they use `_REGISTRY`).
from seqbench.cells import _builtin  # noqa: E402,F401

__all__ = [
    "Cell", "from_flax", "get", "hparams", "make_cell", "names", "param_count", "register", "scan_with_steps",
]
