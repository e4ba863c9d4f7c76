"""Multi-query associative recall against model width: attention vs fixed-state recurrences.

    python -m seqbench.sweep --config=experiments/configs/mqar_capacity.py --runs=experiments/runs/mqar_capacity
    python -m seqbench.sweep --config=experiments/configs/mqar_capacity.py:smoke --runs=/tmp/smoke   # seconds

Published (Arora, Eyuboglu et al., "Zoology: Measuring and Improving Recall in Efficient Language
Models", ICLR 2024, Fig. 2 / Sec. 4): on MQAR, attention solves the task at every model width,
while gated-convolution and recurrent models need a width (hence a recurrent state) that grows
with the number of key-value pairs and the sequence length; at small widths they fail.

seqbench got (variant "full", this 2-core CPU; in-distribution accuracy (length 64) — the claim
is about fitting, not length — mean ± 95% CI half-width over 3 seeds; see
experiments/leaderboard/leaderboard.md):
  attention-w16                    in-dist 0.10 ± 0.02  score 0.10 ± 0.02 (best seed 0.11)  eff. length [64, 128, 128]
  attention-w64                    in-dist 1.00 ± 0.00  score 0.98 ± 0.03 (best seed 0.99)  eff. length [128, 128, 128]
  lru-w16                          in-dist 0.09 ± 0.02  score 0.08 ± 0.01 (best seed 0.08)  eff. length [64, 64, 128]
  lru-w64                          in-dist 0.12 ± 0.01  score 0.11 ± 0.02 (best seed 0.12)  eff. length [64, 128, 128]
  mamba-w16                        in-dist 0.07 ± 0.06  score 0.07 ± 0.05 (best seed 0.09)  eff. length [128, 128, 128]
  mamba-w64                        in-dist 0.14 ± 0.02  score 0.13 ± 0.02 (best seed 0.14)  eff. length [64, 128, 128]
  s5-w16                           in-dist 0.04 ± 0.00  score 0.04 ± 0.01 (best seed 0.04)  eff. length [64, 64, 128]
  s5-w64                           in-dist 0.10 ± 0.02  score 0.07 ± 0.01 (best seed 0.08)  eff. length [64, 64, 64]
Run time: 14 min for the 8 runs (sum of the runs' wall time on 2026-11-30, rerun with the
current code; the machine ran tests alongside part of the time).
Comparison with the paper: BUILD_NOTES.md, "Reproductions".

Variants:
- "full" (run): 4 cells (attention, s5, lru, mamba) x 2 widths (16, 64) = 8 runs; 2 layers
  (attention needs two for the induction circuit), vocabulary 64 instead of 8,192, 8 key-value
  pairs at length 64, 800 steps of batch 32, 3 seeds, lr 3e-3; evaluated at 64 (the number
  that matters) and 128.
  lru and s5 keep their default d_state = 64 at both widths (their state per layer is
  d_state, not the width), so in "full" their width changes the rest of the model, not the
  state: the leaderboard's state-size column shows it.
- "paper" (not run): the issue's size — 5 cells (adds gla) x widths 32, 64, 128, 256,
  vocabulary 8,192, 16 pairs at length 256, 20,000 steps of batch 64, 3 seeds; lru and s5 get
  d_state = width, so every cell's state grows with the width as in Zoology's sweep.
- "smoke": every run of "full" at toy size (3 steps), for the tests.
"""

VARIANTS = ("full", "smoke", "paper")


def get_config(arg="full"):
    """Fields shared by every run (alone: attention at width 64)."""
    if arg not in VARIANTS:
        raise ValueError(f"mqar_capacity: unknown variant {arg!r}; valid: {list(VARIANTS)}")
    config = dict(
        cell="attention",
        task="mqar",
        # keys from 1..31, values from 32..63: a 64-token vocabulary keeps the embedding and the
        # output layer small on a CPU (Zoology uses 8,192)
        task_hparams={"vocab_size": 64, "num_kv_pairs": 8},
        width=64,
        depth=2,  # Zoology's two layers; one attention layer cannot form an induction head
        train_length=64,  # fixed length: capacity, not length generalisation, is measured
        curriculum="fixed",
        steps=800,
        batch_size=32,
        seeds=3,
        learning_rate=3e-3,
        eval_lengths=(64, 128),
        eval_size=128,  # test sequences per length
        log_every=200,
    )
    if arg == "paper":
        config.update(task_hparams={"vocab_size": 8192, "num_kv_pairs": 16}, train_length=256,
                      steps=20_000, batch_size=64, learning_rate=1e-3, eval_lengths=(256, 512),
                      eval_size=512, log_every=1000, checkpoint_every=5000)
    if arg == "smoke":
        config.update(task_hparams={"vocab_size": 16, "num_kv_pairs": 2}, train_length=8,
                      steps=3, batch_size=4, seeds=2, eval_lengths=(8,), eval_size=8, log_every=3)
    return config


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    cells = ("attention", "s5", "lru", "mamba") + (("gla",) if arg == "paper" else ())
    widths = {"full": (16, 64), "smoke": (8, 16), "paper": (32, 64, 128, 256)}[arg]
    state_follows_width = arg == "paper"
    return [dict(name=f"{cell}-w{width}", cell=cell, width=width,
                 **({"cell_hparams": {"d_state": width}}
                    if state_follows_width and cell in ("lru", "s5") else {}))
            for cell in cells for width in widths]
