"""The transitions a diagonal cell learned, per input token, in the first layer of a finished run.

    python experiments/learned_transitions.py --run=experiments/runs/chomsky/rg_lru-neg-lowinit-parity_check-lr0.003

For a cell with a diagonal recurrence h_t = a_t ⊙ h_{t-1} + b_t (`Cell.diagonal`: lru, rg_lru,
mingru, minlstm) in the first layer of a token model, a_t depends on the token alone: the cell
reads x = RMSNorm(E[token]) (or E[token] without the norm). So a(v) for every token v of the
vocabulary, shape (seeds, V, D), is the whole of what the layer's state does to its past. With
`negative_eigenvalues`, a is already the signed 2 a - 1 in (-1, 1).

Parity (Grazzi et al. 2025) needs a channel with a(0) = +1 and a(1) = -1: after n tokens of which
k are 1s, the channel holds a(0)^(n-k) a(1)^k times what it was, so |a(1)| < 1 shrinks the
parity signal by |a(1)| per 1 and the model generalises only as far as the shrunk signal still
dominates its other inputs. The printout gives, per seed, how many channels have
a(0) > 0 > a(1), the three whose min(|a(0)|, |a(1)|) is largest, and that minimum to the 50th
power (a sequence of 100 tokens holds about 50 ones). It reads the run's final checkpoint, which
is not committed: run it where the run was trained, or train the run again (move its
result.json away, then rerun its command: the same seeds give the same model).
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from seqbench import models
from seqbench.cells import rtrl
from seqbench.engine import loop


def token_transitions(cell, params, vocab_size: int) -> np.ndarray:
    """a(v) of the first layer for every token v: shape (seeds, V, D), float64 (complex128 for
    a complex state, as lru's).

    `params`: a model's parameters with a leading seed axis (a `TrainState.params`)."""
    if cell.diagonal is None:
        raise ValueError(f"{cell.name!r} has no diagonal recurrence (Cell.diagonal); cells that "
                         f"have one: {', '.join(rtrl.supported_cells())}")
    if "table" not in params["embed"]:
        raise ValueError("the run's model has no token embedding table (input_encoding must be "
                         "'embedding')")
    block = params["blocks"][0]

    def one_seed(table, block):
        x = table[:vocab_size]
        if "norm_cell" in block:
            x = models.rms_norm(x, block["norm_cell"])
        a, _, _ = cell.diagonal.coefficients(block["cell"], x[:, None, :])  # T = 1 per token
        return jnp.broadcast_to(a, (vocab_size, 1, a.shape[-1]))[:, 0, :]

    a = np.asarray(jax.vmap(one_seed)(params["embed"]["table"], block))
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def parity_channels(a: np.ndarray) -> list[str]:
    """One line per seed: the channels with a(0) > 0 > a(1) and the three that keep most, or,
    where no channel flips, the smallest a(0) and a(1) (`a`: real transitions, shape
    (seeds, V >= 2, D))."""
    lines = []
    for seed, (a0, a1) in enumerate(zip(a[:, 0], a[:, 1])):
        flips = (a0 > 0) & (a1 < 0)
        head = f"seed {seed}: {int(flips.sum())} of {a0.size} channels with a(0) > 0 > a(1); "
        if not flips.any():
            lines.append(head + f"smallest a(0)={a0.min():+.4f}, smallest a(1)={a1.min():+.4f}")
            continue
        keep = np.minimum(np.abs(a0), np.abs(a1)) * flips
        best = [i for i in np.argsort(-keep)[:3] if flips[i]]
        lines.append(head + "best: " + ", ".join(f"a(0)={a0[i]:+.4f} a(1)={a1[i]:+.4f}"
                                                 for i in best)
                     + f"; min(|a|)^50 = {keep[best[0]] ** 50:.3g}")
    return lines


def read_record(run: str) -> dict:
    """The run's result.json; SystemExit with one line when there is none to read."""
    try:
        with open(os.path.join(run, "result.json")) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: --run={run}: no readable result.json ({e}); give a finished "
                         f"run's folder") from None


def main(argv):
    del argv
    run = flags.FLAGS.run
    record = read_record(run)
    try:
        _, cell, task, _, state = loop.final_state(run, record)
        a = token_transitions(cell, state.params, task.input_vocab)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"{run}: step {record['steps_run']}, transitions a(token) of the first layer, "
          f"{a.shape[0]} seeds")
    print("\n".join(parity_channels(a)))


if __name__ == "__main__":
    flags.DEFINE_string("run", None, "A finished run's folder (result.json, checkpoints/).",
                        required=True)
    app.run(main)
