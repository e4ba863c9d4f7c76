"""Registers the tasks of every built-in task module (each ends with a `TASKS` dict)."""

from seqbench.tasks import (
    _REGISTRY,
    context_free,
    context_sensitive,
    memory,
    real,
    regular,
    state_tracking,
    text,
    timescales,
)

for _module in (memory, timescales, state_tracking, regular, context_free, context_sensitive, real,
                text):
    _REGISTRY.register_all(_module.TASKS)
