"""Crash-safe checkpointing for one training run, on top of orbax.

`Checkpointer` wraps an orbax `CheckpointManager` with synchronous saves (a
SIGKILL after `save()` returns cannot lose the checkpoint; orbax writes into a
temporary directory and renames it on commit, so a kill during `save()` leaves
no half-written step behind) and a `restore()` that falls back from a corrupt
or partial newest checkpoint to the previous one, warning loudly.

State is any pytree of jax / numpy arrays and python scalars. Typed jax PRNG
keys (`jax.random.key(...)`) are supported: their raw `jax.random.key_data`
is stored and they are re-wrapped with the key implementation of the matching
leaf of `like` on restore. (Legacy raw uint32 keys are plain arrays anyway.)

`StopRequested` turns SIGTERM / SIGINT into a flag so that a training loop can
save and exit cleanly at the next step boundary.
"""

from __future__ import annotations

import logging as pylogging
import os
import signal
import threading
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

__all__ = ["Checkpointer", "CheckpointError", "StopRequested"]


class CheckpointError(RuntimeError):
    """No checkpoint of the run could be restored (but some exist)."""


class _NotOrbax(pylogging.Filter):
    """Drops orbax's own log records: a damaged checkpoint makes it log an error (and asyncio
    tracebacks) for every file it tries; `Checkpointer.restore` reports each step it skips in
    one line instead."""

    def filter(self, record: pylogging.LogRecord) -> bool:
        return f"{os.sep}orbax{os.sep}" not in record.pathname


logging.get_absl_logger().addFilter(_NotOrbax())


def _is_typed_key(x) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _to_storable(tree) -> dict[str, Any]:
    """The leaves of any pytree as a flat dict {"leaf_000000": ..., ...}.

    Storing leaves, not the tree, lets any container (NamedTuples such as optax states, custom
    pytree nodes) round-trip: orbax keeps only dicts and lists, and `like`'s own structure puts
    the leaves back. Typed PRNG keys are stored as their raw key data.
    """
    return {
        f"leaf_{i:06d}": jax.random.key_data(x) if _is_typed_key(x) else x
        for i, x in enumerate(jax.tree.leaves(tree))
    }


def _leaf_desc(x) -> str:
    return f"{type(x).__name__}{tuple(np.shape(x))}:{getattr(x, 'dtype', '-')}"


class Checkpointer:
    """Checkpoints of one run in `directory` (orbax CheckpointManager): keep the last `keep`."""

    def __init__(self, directory: str, *, keep: int = 3):
        self.directory = os.path.abspath(os.fspath(directory))
        os.makedirs(self.directory, exist_ok=True)
        self._options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            enable_async_checkpointing=False,
            create=True,
        )
        # Registering the handler up front lets item_metadata() work on a fresh manager
        # (otherwise orbax only learns the handler from the first save/restore call).
        self._mgr = ocp.CheckpointManager(
            self.directory, options=self._options, item_handlers=ocp.StandardCheckpointHandler())

    # ------------------------------------------------------------------ save
    def save(self, step: int, state) -> None:
        """Write `state` as checkpoint `step`; returns only once it is committed on disk."""
        step = int(step)
        self._mgr.reload()
        if step in self._mgr.all_steps():
            # e.g. resumed from step-10 after the step checkpoint was found corrupt:
            # replace the bad one instead of failing with "step already exists".
            logging.warning("checkpoint: overwriting existing step %d in %s", step, self.directory)
            self._mgr.delete(step)
        saved = self._mgr.save(step, args=ocp.args.StandardSave(_to_storable(state)), force=True)
        self._mgr.wait_until_finished()
        if not saved:
            raise CheckpointError(f"orbax declined to save step {step} in {self.directory}")

    # --------------------------------------------------------------- restore
    def _restore_step(self, step: int, like):
        storable_like = _to_storable(like)
        like_leaves, like_def = jax.tree.flatten(storable_like)
        # Check the stored tree against `like` first: orbax may otherwise pad/truncate
        # or silently cast mismatching arrays.
        meta = self._mgr.item_metadata(step)
        meta_tree = getattr(meta, "tree", meta)
        if meta_tree is not None:
            try:
                meta_leaves = like_def.flatten_up_to(meta_tree)
            except (ValueError, TypeError, KeyError) as e:
                raise CheckpointError(f"tree structure differs from `like`: {e}") from e
            for path_leaf, m in zip(jax.tree.leaves_with_path(storable_like), meta_leaves):
                path, want = path_leaf
                shape = getattr(m, "shape", None)
                if shape is not None and tuple(shape) != tuple(np.shape(want)):
                    raise CheckpointError(
                        f"leaf {jax.tree_util.keystr(path)} has shape {tuple(shape)}, "
                        f"expected {tuple(np.shape(want))}")
        restored = self._mgr.restore(step, args=ocp.args.StandardRestore(storable_like))
        got_leaves = like_def.flatten_up_to(restored)

        out = []
        for want, orig, got in zip(like_leaves, jax.tree.leaves(like), got_leaves):
            if isinstance(want, (jax.Array, np.ndarray, np.generic)):
                if tuple(np.shape(got)) != tuple(np.shape(want)):
                    raise CheckpointError(
                        f"restored shape {np.shape(got)} != expected {np.shape(want)}")
                if isinstance(want, jax.Array):
                    got = jax.numpy.asarray(got, dtype=want.dtype)
                else:
                    got = np.asarray(got, dtype=want.dtype)
                if _is_typed_key(orig):
                    got = jax.random.wrap_key_data(got, impl=jax.random.key_impl(orig))
            elif isinstance(want, (bool, int, float, complex)):
                got = type(want)(np.asarray(got).item())
            out.append(got)
        return jax.tree.unflatten(jax.tree.structure(like), out)

    def restore(self, like) -> tuple[int, Any] | None:
        """Newest checkpoint restorable into the structure/dtypes/shapes of `like`.

        Returns (step, state), or None if the directory holds no checkpoint. A newest
        checkpoint that fails to restore is skipped with a warning; if none restores,
        raises CheckpointError listing every step tried and why it failed.
        """
        self._mgr.reload()
        steps = sorted(self._mgr.all_steps(), reverse=True)
        if not steps:
            return None
        failures = []
        for step in steps:
            try:
                state = self._restore_step(step, like)
            except Exception as e:  # noqa: BLE001 - any failure means "unreadable"
                reason = f"{type(e).__name__}: {e}".splitlines()[0][:500]
                logging.warning("checkpoint: step %d in %s is unreadable, skipping (%s)",
                                step, self.directory, reason)
                failures.append((step, reason))
                continue
            if failures:
                logging.warning("checkpoint: restored older step %d after skipping %s",
                                step, [s for s, _ in failures])
            return step, state
        msg = "; ".join(f"step {s}: {r}" for s, r in failures)
        logging.error("checkpoint: no readable checkpoint in %s (%s)", self.directory, msg)
        raise CheckpointError(
            f"no checkpoint in {self.directory} could be restored; tried steps "
            f"{[s for s, _ in failures]}: {msg}")

    # ------------------------------------------------------------------ misc
    def steps(self) -> list[int]:
        self._mgr.reload()
        return sorted(int(s) for s in self._mgr.all_steps())

    def close(self) -> None:
        self._mgr.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StopRequested:
    """Context manager: SIGTERM/SIGINT set `requested` instead of killing the process.

    The training loop checks `requested` after each step, saves and exits. A second
    signal of the same kind while a stop is already pending is still only recorded.
    Must be entered from the main thread (Python only delivers signals there); in
    other threads it is a no-op and `requested` stays False.
    """

    _SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self._requested = False
        self._previous: dict[int, Any] = {}
        self.signum: int | None = None

    def _handler(self, signum, frame):  # noqa: ARG002
        if not self._requested:
            logging.warning("received signal %d: stopping after the current step", signum)
        self._requested = True
        self.signum = signum

    def __enter__(self) -> "StopRequested":
        if threading.current_thread() is threading.main_thread():
            for sig in self._SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return self._requested
