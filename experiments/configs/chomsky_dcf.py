"""Deterministic context-free tasks: no recurrence without a stack generalises.

    python -m seqbench.sweep --config=experiments/configs/chomsky_dcf.py --runs=experiments/runs/chomsky_dcf
    python -m seqbench.sweep --config=experiments/configs/chomsky_dcf.py:smoke --runs=/tmp/smoke   # seconds

Published (Delétang et al., "Neural Networks and the Chomsky Hierarchy", ICLR 2023, Table 2):
on reverse_string and stack_manipulation (trained on lengths 1..40, scored on 41..500) the RNN,
the LSTM and the Transformer all stay far from 100% — only networks with an external stack or
tape (Stack-RNN, Tape-RNN) solve them. The issue asks whether the linear recurrences (LRU,
RG-LRU, Mamba), which the paper did not have, fare any better; the expectation from the paper's
argument (a finite state cannot hold an unbounded stack) is that they do not.

seqbench got (variant "full", this 2-core CPU; score = mean accuracy over the evaluated lengths
> 40, mean ± 95% CI half-width over 3 seeds; see experiments/leaderboard/leaderboard.md):
  lru-reverse_string               in-dist 0.91 ± 0.05  score 0.64 ± 0.04 (best seed 0.66)  eff. length [41, 10, 10]
  lru-stack_manipulation           in-dist 0.70 ± 0.05  score 0.38 ± 0.05 (best seed 0.40)  eff. length [10, 10, 10]
  lstm-reverse_string              in-dist 0.78 ± 0.04  score 0.57 ± 0.01 (best seed 0.58)  eff. length [10, 10, 10]
  lstm-stack_manipulation          in-dist 0.81 ± 0.05  score 0.57 ± 0.02 (best seed 0.57)  eff. length [10, 10, 10]
  rg_lru-reverse_string            in-dist 0.67 ± 0.03  score 0.55 ± 0.01 (best seed 0.55)  eff. length [41, 10, 10]
  rg_lru-stack_manipulation        in-dist 0.67 ± 0.03  score 0.43 ± 0.07 (best seed 0.46)  eff. length [10, 41, 41]
Run time: 5 min for the 6 runs (sum of the runs' wall time on 2026-11-30, rerun with the
current code; the machine ran tests alongside part of the time).
Comparison with the paper: BUILD_NOTES.md, "Reproductions".

Variants:
- "full" (run): 2 tasks x 3 cells (lstm, lru, rg_lru) = 6 runs; width 32, depth 1, 600 steps of
  batch 32, 3 seeds, lr 1e-2, and 5 lengths beyond training (41, 60, 100, 200, 500).
- "paper" (not run): adds mamba and the negative-eigenvalue variants, width 256, batch 128,
  100,000 steps (the paper trains 1,000,000), lr 3e-4, 5 seeds, every length 41..500.
- "smoke": every run of "full" at toy size (3 steps, width 8), for the tests.
"""

VARIANTS = ("full", "smoke", "paper")
CHOMSKY_GRID = (10, 40, 41, 60, 100, 200, 500)  # 2 training lengths + 5 beyond (41..500 reduced)


def get_config(arg="full"):
    """Fields shared by every run (alone: the LSTM on reverse_string)."""
    if arg not in VARIANTS:
        raise ValueError(f"chomsky_dcf: unknown variant {arg!r}; valid: {list(VARIANTS)}")
    config = dict(
        cell="lstm",
        task="reverse_string",
        width=32,
        depth=1,
        train_length=40,  # Delétang et al.: training lengths U[1, 40]
        min_train_length=1,
        curriculum="uniform",
        steps=600,  # the sequences are twice as long (input, then as many output steps)
        batch_size=32,
        seeds=3,
        learning_rate=1e-2,  # as the retired chomsky_regular preset
        eval_lengths=CHOMSKY_GRID,
        eval_size=128,  # test sequences per length
        log_every=200,
    )
    if arg == "paper":
        config.update(width=256, batch_size=128, steps=100_000, learning_rate=3e-4, seeds=5,
                      eval_lengths=(), eval_size=256, log_every=1000, checkpoint_every=5000)
    if arg == "smoke":
        config.update(width=8, train_length=4, steps=3, batch_size=4, seeds=2,
                      eval_lengths=(4, 8), eval_size=8, log_every=3)
    return config


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    cells = [("lstm", "lstm", {}), ("lru", "lru", {}), ("rg_lru", "rg_lru", {})]
    if arg == "paper":
        cells += [("mamba", "mamba", {})] + [
            (f"{cell}-neg", cell, {"negative_eigenvalues": True,
                                   # the LRU's negative pair is real-valued (no phase)
                                   **({"theta_max": 0.0} if cell == "lru" else {})})
            for cell in ("lru", "rg_lru", "mamba")]
    return [dict(name=f"{prefix}-{task}", cell=cell, task=task, cell_hparams=hparams)
            for task in ("reverse_string", "stack_manipulation") for prefix, cell, hparams in cells]
