"""Long timescales: one memory horizon N at a time vs every horizon 1..N at once.

    python -m seqbench.sweep --config=experiments/configs/timescales_curriculum.py --runs=experiments/runs/timescales_curriculum
    python -m seqbench.sweep --config=experiments/configs/timescales_curriculum.py:smoke --runs=/tmp/smoke   # seconds

Published (Khajehabdollahi et al., "Emergent mechanisms for long timescales depend on training
curriculum and affect performance in memory tasks", ICLR 2024): RNNs trained on N-parity and
N-DMS with a single-head curriculum (one N at a time, N increased once solved) learn more slowly,
reach smaller N and are less robust than networks trained with a multi-head curriculum (heads for
every n' <= N trained simultaneously), which develop short, well-separated single-neuron
timescales and generalise further.

seqbench got (variant "full", this 2-core CPU; score = mean accuracy over the lengths 128..1024
beyond training, mean ± 95% CI half-width over 3 seeds; for the multi-head runs it averages over
the N heads):
  elman-n_dms12-multi              in-dist 1.00 ± 0.00  score 1.00 ± 0.00 (best seed 1.00)  eff. length [1024, 1024, 1024]
  elman-n_dms12-single             in-dist 0.49 ± 0.02  score 0.50 ± 0.01 (best seed 0.50)  eff. length [1024, 1024, 1024]
  elman-n_parity6-multi            in-dist 1.00 ± 0.00  score 1.00 ± 0.00 (best seed 1.00)  eff. length [1024, 1024, 1024]
  elman-n_parity6-single           in-dist 0.67 ± 0.71  score 0.67 ± 0.72 (best seed 1.00)  eff. length [1024, 1024, 1024]
  lstm-n_dms12-multi               in-dist 0.97 ± 0.01  score 0.97 ± 0.01 (best seed 0.97)  eff. length [1024, 1024, 1024]
  lstm-n_dms12-single              in-dist 0.95 ± 0.08  score 0.95 ± 0.09 (best seed 0.98)  eff. length [1024, 1024, 1024]
  lstm-n_parity6-multi             in-dist 1.00 ± 0.00  score 1.00 ± 0.00 (best seed 1.00)  eff. length [1024, 1024, 1024]
  lstm-n_parity6-single            in-dist 0.83 ± 0.72  score 0.83 ± 0.72 (best seed 1.00)  eff. length [1024, 1024, 1024]
Run time: 3 min for the 8 runs (sum of the runs' wall time on 2026-11-30, rerun with the
current code; the machine ran tests alongside part of the time).
Comparison with the paper: BUILD_NOTES.md, "Reproductions".

What differs from the paper: seqbench has no curriculum over N (a run trains one task), so
"single" trains head N alone from scratch and "multi" trains heads 1..N from scratch, both for
the same steps; the paper grows N during training. The paper's networks are elman RNNs; the
issue adds gru and lstm.

Variants:
- "full" (run): n_parity (N = 6) and n_dms (N = 12) x {single, multi} x 2 cells (elman,
  lstm; gru only in "paper", for the CPU budget) = 8 runs; width 32, depth 1, fixed length 64, 600 steps of batch 32, 3 seeds, lr 1e-2,
  evaluated at 64 x {1, 2, 4, 8, 16} on 64 test sequences per length
  (the default grid to 64 x 64 did not fit the CPU budget).
- "paper" (not run): N = 16 / 32 with width 128 and 20,000 steps.
- "smoke": every run of "full" at toy size (3 steps, width 8), for the tests.
"""

VARIANTS = ("full", "smoke", "paper")


def horizons(arg):
    """{task: N} — the memory horizon asked for."""
    return {"paper": {"n_parity": 16, "n_dms": 32}, "smoke": {"n_parity": 3, "n_dms": 3},
            "full": {"n_parity": 6, "n_dms": 12}}[arg]


def get_config(arg="full"):
    """Fields shared by every run (alone: an elman RNN on single-head n_parity)."""
    if arg not in VARIANTS:
        raise ValueError(f"timescales_curriculum: unknown variant {arg!r}; valid: "
                         f"{list(VARIANTS)}")
    config = dict(
        cell="elman",
        task="n_parity",
        task_hparams={"n": horizons(arg)["n_parity"]},  # heads=None: head N alone
        width=32,
        depth=1,
        train_length=64,  # difficulty does not grow with length; longer tests stability
        curriculum="fixed",
        steps=600,
        batch_size=32,
        seeds=3,
        learning_rate=1e-2,
        eval_lengths=(64, 128, 256, 512, 1024),  # 64 x {1, ..., 16}: the CPU budget
        eval_size=64,  # test sequences per length
        log_every=200,
    )
    if arg == "paper":
        config.update(width=128, steps=20_000, learning_rate=1e-3, eval_lengths=(),
                      eval_size=128, log_every=1000, checkpoint_every=5000)
    if arg == "smoke":
        config.update(width=8, train_length=8, steps=3, batch_size=4, seeds=2,
                      eval_lengths=(8, 16), eval_size=8, log_every=3)
    return config


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    return [dict(name=f"{cell}-{task}{n}-{mode}", cell=cell, task=task,
                 # "all": heads for every n' in 1..N, trained together (the paper's multi-head)
                 task_hparams={"n": n, **({"heads": "all"} if mode == "multi" else {})})
            for task, n in horizons(arg).items() for mode in ("single", "multi")
            for cell in (("elman", "gru", "lstm") if arg == "paper" else ("elman", "lstm"))]
