"""experiments/learned_transitions.py: a(token) of a diagonal cell's first layer.

Held against the model itself: feeding token v to the first layer's `cell.step` from two states
h and h' gives h_1 - h_1' = a(v) ⊙ (h - h'), so a(v) is read off the cell's own step on the
normalised embedding, independently of `Cell.diagonal.coefficients`.
"""

from __future__ import annotations

import pathlib
import runpy

import jax
import numpy as np
import pytest

import seqbench.cells
from seqbench import models

SCRIPT = runpy.run_path(str(pathlib.Path(__file__).resolve().parents[1] / "experiments"
                            / "learned_transitions.py"))
VOCAB, WIDTH, SEEDS = 3, 8, 2


def _model(cell_name, **hparams):
    cell = seqbench.cells.get(cell_name, d_hidden=WIDTH, **hparams)
    model = models.build(cell, input_dim=VOCAB, output_dim=2, depth=2)
    params = jax.vmap(model.init)(jax.random.split(jax.random.PRNGKey(0), SEEDS))
    return cell, params


@pytest.mark.parametrize("cell_name, hparams", [
    ("rg_lru", {"negative_eigenvalues": True, "a_min": 0.01, "a_max": 0.999}),
    ("mingru", {}),
])
def test_token_transitions_are_what_the_first_layer_s_step_does(cell_name, hparams):
    cell, params = _model(cell_name, **hparams)
    a = SCRIPT["token_transitions"](cell, params, VOCAB)
    assert a.shape == (SEEDS, VOCAB, WIDTH)
    block = params["blocks"][0]
    # every token of the vocabulary as a batch row, one seed per vmapped member
    x = jax.vmap(models.rms_norm)(params["embed"]["table"], block["norm_cell"])  # (S, V, D)
    step = jax.jit(jax.vmap(lambda p, h, x: cell.step(p, h, x)[0]))
    rng = np.random.default_rng(0)
    h, h_other = (rng.normal(size=(SEEDS, VOCAB, WIDTH)).astype(np.float32) for _ in range(2))
    h1, h1_other = (np.asarray(step(block["cell"], state, x), np.float64)
                    for state in (h, h_other))
    np.testing.assert_allclose(a * (h - h_other), h1 - h1_other, rtol=1e-4, atol=1e-5)
    assert np.all(np.abs(a) < 1)


def test_parity_channels_name_the_sign_flipping_channels():
    a = np.array([[[0.99, 0.5, -0.2], [-0.97, 0.4, -0.9]]])  # one seed, tokens 0 and 1
    (line,) = SCRIPT["parity_channels"](a)
    assert line.startswith("seed 0: 1 of 3 channels with a(0) > 0 > a(1)")
    assert line.split("best: ")[1].split(";")[0] == "a(0)=+0.9900 a(1)=-0.9700"  # that one only
    assert line.endswith(f"min(|a|)^50 = {0.97 ** 50:.3g}")


def test_a_cell_without_a_diagonal_form_is_refused():
    cell, params = _model("elman")
    with pytest.raises(ValueError, match="'elman' has no diagonal recurrence .*; cells that "
                                         "have one: lru, mingru, minlstm, rg_lru"):
        SCRIPT["token_transitions"](cell, params, VOCAB)


def test_a_folder_without_a_result_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match=f"error: --run={tmp_path}: no readable result.json "
                                         r"\(.*\); give a finished run's folder"):
        SCRIPT["read_record"](str(tmp_path))


def test_parity_channels_without_a_sign_flip_give_the_smallest_transitions():
    # no channel has a(0) > 0 > a(1) (seed 0's third has both negative): the line must not name
    # arbitrary channels as "best"
    a = np.array([[[0.9, 0.6, -0.95], [0.8, 0.7, -0.3]], [[0.9, 0.6, 0.95], [0.8, 0.7, 0.5]]])
    lines = SCRIPT["parity_channels"](a)
    head = "0 of 3 channels with a(0) > 0 > a(1); smallest"
    assert lines == [f"seed 0: {head} a(0)=-0.9500, smallest a(1)=-0.3000",
                     f"seed 1: {head} a(0)=+0.6000, smallest a(1)=+0.5000"]
