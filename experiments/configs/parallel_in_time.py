"""Training a nonlinear RNN with its scan solved in parallel over time (DEER, quasi-DEER, ELK).

    python -m seqbench.sweep --config=experiments/configs/parallel_in_time.py --runs=experiments/runs/parallel_in_time
    python -m seqbench.sweep --config=experiments/configs/parallel_in_time.py:smoke --runs=/tmp/smoke   # seconds

Published: Lim et al. (ICLR 2024, "Parallelizing non-linear sequential models over the sequence
length") train GRUs with the states found by Newton's method (DEER), gradients by the implicit
function theorem, and get the sequential model's results, faster on GPUs for long sequences;
Gonzalez et al. (NeurIPS 2024, "Towards Scalable and Stable Parallelization of Nonlinear
RNNs") add the diagonal (quasi-DEER, O(T·D) memory) and damped (ELK) forms. Their claim that
matters for a benchmark: the parallel solve is the same model, trained to the same result.

seqbench got ("full", this 2-core CPU, 2026-12-01): the same model from every solver. Each run
scores 1.000 on both seeds at lengths 64..256; the training losses agree with the sequential
run's to 7e-4 (relative) at every logged step and the evaluation losses to 2e-8. Cost: train
seconds (solver iterations per step at the end): sequential 4, jacobi 29 (~32), quasi_deer 42
(~32), deer 76 (~7), quasi_elk 76 (~64), so on a CPU each parallel solve costs 7-19x the loop
(measured before the solver stopped evaluating f twice per iteration)
(BUILD_NOTES.md, "Parallel-in-time nonlinear RNNs").

Variants:
- "full" (this 2-core CPU): the Elman RNN (width 32, the seqbench body) on 6-parity with a head
  for every n <= 6 (`n_parity`, the setting of `timescales_curriculum.py` that the sequential
  RNN learns on every seed: length 64, 600 steps of batch 32, lr 1e-2), 2 seeds, once per
  `scan_impl`: "sequential" (lax.scan, the reference), "jacobi", "deer", "quasi_deer" and
  "quasi_deer" with damping 1 (quasi-ELK, at most 1,024 iterations: 4T at the longest
  evaluation length); solver tolerance 1e-6. Evaluated at 64, 128 and 256. The same seeds give
  the same initial parameters and batches, so the runs differ only by the solver's rounding;
  the wall times compare the methods' cost on this CPU.
- "paper" (a GPU job, not run here): 16-parity at T = 1,000 (evaluated to 10,000, the regime
  the papers target), width 64, 10,000 steps.
- "smoke": every run at toy size (3 steps, width 8), for the tests.
"""

VARIANTS = ("full", "smoke", "paper")
SOLVERS = (("sequential", {}), ("jacobi", {"scan_impl": "jacobi"}),
           ("deer", {"scan_impl": "deer"}), ("quasi_deer", {"scan_impl": "quasi_deer"}),
           # damped solves converge geometrically, so they get more than T iterations
           ("quasi_elk", {"scan_impl": "quasi_deer", "damping": 1.0, "max_iters": 1024}))


def get_config(arg="full"):
    """Fields shared by every run (alone: the sequential reference)."""
    if arg not in VARIANTS:
        raise ValueError(f"parallel_in_time: unknown variant {arg!r}; valid: {list(VARIANTS)}")
    config = dict(
        cell="elman",
        task="n_parity",
        task_hparams={"n": 6, "heads": "all"},
        width=32,
        depth=1,
        train_length=64,
        curriculum="fixed",
        steps=600,
        batch_size=32,
        seeds=2,
        learning_rate=1e-2,
        eval_lengths=(64, 128, 256),
        eval_size=64,
        log_every=150,
    )
    if arg == "paper":
        config.update(width=64, task_hparams={"n": 16, "heads": "all"}, train_length=1000,
                      steps=10_000, eval_lengths=(1000, 10_000), log_every=1000,
                      checkpoint_every=2000)
    if arg == "smoke":
        config.update(width=8, task_hparams={"n": 3, "heads": "all"}, train_length=8, steps=3,
                      batch_size=4, eval_lengths=(8, 16), eval_size=8, log_every=3)
    return config


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    return [dict(name=f"elman-{name}", label=f"elman-{name}", cell_hparams=hparams)
            for name, hparams in SOLVERS]
