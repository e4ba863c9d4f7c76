"""Permutation word problems (S5): which cell families can track state?

    python -m seqbench.sweep --config=experiments/configs/state_tracking.py --runs=experiments/runs/state_tracking
    python -m seqbench.sweep --config=experiments/configs/state_tracking.py:smoke --runs=/tmp/smoke   # seconds

Published (Merrill, Petty & Sabharwal, "The Illusion of State in State-Space Models", ICML 2024):
the S5 (and A5) word problem is NC1-complete, so transformers and diagonal/linear state-space
models of fixed depth cannot solve it at every length; in their experiments an LSTM (an RNN
with a nonlinear recurrence) solves it with one layer, while transformers and Mamba need more
layers as the length grows. Grazzi et al. (ICLR 2025) show that products of generalized
Householder transitions with eigenvalues in [-1, 1] (DeltaNet with `negative_eigenvalues`) can
learn it with several layers.

seqbench got (variant "full", this 2-core CPU; per-step accuracy of the running product, chance
1/120; score = mean accuracy over the lengths 32..1024 beyond training; mean ± 95% CI
half-width over 3 seeds):
  attention-s5                     in-dist 0.07 ± 0.01  score 0.02 ± 0.00 (best seed 0.02)  eff. length [16, 16, 16]
  deltanet-neg-s5                  in-dist 0.07 ± 0.01  score 0.02 ± 0.00 (best seed 0.02)  eff. length [16, 16, 16]
  lru-s5                           in-dist 0.07 ± 0.01  score 0.02 ± 0.00 (best seed 0.02)  eff. length [16, 16, 16]
  lstm-s5                          in-dist 0.07 ± 0.01  score 0.02 ± 0.00 (best seed 0.02)  eff. length [16, 16, 16]
  rg_lru-s5                        in-dist 0.07 ± 0.01  score 0.02 ± 0.00 (best seed 0.02)  eff. length [16, 16, 16]
Run time: 3 min for the 5 runs (sum of the runs' wall time on 2026-11-30, rerun with the
code after the DeltaNet deadlock fix, see BUILD_NOTES.md "Cells and models"; the machine ran
tests alongside part of the time).
Comparison with the paper: BUILD_NOTES.md, "Reproductions".

Variants:
- "full" (run): s5 for one cell of every family — attention, lstm (classic), lru (ssm),
  rg_lru (gated), deltanet with negative eigenvalues (matrix) = 5 runs; width 64, depth 2,
  lengths U[1, 16], 600 steps of batch 32, 3 seeds, lr 3e-3, evaluated at 16 x {1, ..., 64} on 64
  test sequences per length (600 steps and 64 sequences: the CPU budget).
- "paper" (not run): s5 and a5 for every registered cell, lengths U[1, 64], width 256, 4 layers,
  20,000 steps.
- "smoke": every run of "full" at toy size (3 steps, width 8), for the tests.
"""

VARIANTS = ("full", "smoke", "paper")
FULL_CELLS = (("attention", "attention", {}), ("lstm", "lstm", {}), ("lru", "lru", {}),
              ("rg_lru", "rg_lru", {}),
              ("deltanet-neg", "deltanet", {"negative_eigenvalues": True}))
PAPER_CELLS = ("attention", "bilinear", "deltanet", "elman", "gateloop", "gla", "gru", "lem",
               "linear_attention", "lru", "lstm", "mamba", "mingru", "minlstm", "retnet",
               "rg_lru", "s4d", "s5")


def get_config(arg="full"):
    """Fields shared by every run (alone: the LSTM on s5)."""
    if arg not in VARIANTS:
        raise ValueError(f"state_tracking: unknown variant {arg!r}; valid: {list(VARIANTS)}")
    config = dict(
        cell="lstm",
        task="s5",
        width=64,  # 120 group elements in and out
        depth=2,
        train_length=16,
        min_train_length=1,
        curriculum="uniform",
        steps=600,
        batch_size=32,
        seeds=3,
        learning_rate=3e-3,
        eval_lengths=(),  # the default grid: 16 x {1, 2, 4, ..., 64}
        eval_size=64,  # test sequences per length
        log_every=250,
    )
    if arg == "paper":
        config.update(width=256, depth=4, train_length=64, steps=20_000, learning_rate=1e-3,
                      eval_size=128,
                      log_every=1000, checkpoint_every=5000)
    if arg == "smoke":
        config.update(width=8, depth=1, train_length=4, steps=3, batch_size=4, seeds=2,
                      eval_lengths=(4, 8), eval_size=8, log_every=3)
    return config


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    if arg == "paper":
        return [dict(name=f"{cell}-{task}", cell=cell, task=task)
                for task in ("s5", "a5") for cell in PAPER_CELLS]
    return [dict(name=f"{prefix}-s5", cell=cell, cell_hparams=hparams)
            for prefix, cell, hparams in FULL_CELLS]
