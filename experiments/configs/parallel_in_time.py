"""Training a nonlinear RNN with its scan solved in parallel over time (DEER, quasi-DEER, ELK).

    python -m seqbench.sweep --config=experiments/configs/parallel_in_time.py --runs=experiments/runs/parallel_in_time
    python -m seqbench.sweep --config=experiments/configs/parallel_in_time.py:smoke --runs=/tmp/smoke   # seconds

Published: Lim et al. (ICLR 2024, "Parallelizing non-linear sequential models over the sequence
length") train GRUs with the states found by Newton's method (DEER), gradients by the implicit
function theorem, and get the sequential model's results, faster on GPUs for long sequences;
Gonzalez et al. (NeurIPS 2024, "Towards Scalable and Stable Parallelization of Nonlinear
RNNs") add the diagonal (quasi-DEER, O(T·D) memory) and damped (ELK) forms. Their claim that
matters for a benchmark: the parallel solve is the same model, trained to the same result.

seqbench got: see BUILD_NOTES.md, "Parallel-in-time nonlinear RNNs" (the runs of "full"
are in experiments/runs/parallel_in_time once a session has run them).

Variants:
- "full" (this 2-core CPU): the Elman RNN (width 32, the seqbench body) on parity_check, trained
  on lengths 1..40 for 1,000 steps of batch 64 with 2 seeds, once per `scan_impl`:
  "sequential" (lax.scan, the reference), "jacobi", "deer", "quasi_deer" and "quasi_deer" with
  damping 1 (quasi-ELK, at most 800 iterations: 4T at the longest evaluation length); solver
  tolerance 1e-6. Evaluated at 40, 100 and 200. The same seeds
  give the same initial parameters and batches, so the runs differ only by the solver's
  rounding; the wall times compare the methods' cost on this CPU.
- "paper" (a GPU job, not run here): the same at T = 1,000..10,000 (the regime the papers
  target), width 64, 10,000 steps.
- "smoke": every run at toy size (3 steps, width 8), for the tests.
"""

VARIANTS = ("full", "smoke", "paper")
SOLVERS = (("sequential", {}), ("jacobi", {"scan_impl": "jacobi"}),
           ("deer", {"scan_impl": "deer"}), ("quasi_deer", {"scan_impl": "quasi_deer"}),
           # damped solves converge geometrically, so they get more than T iterations
           ("quasi_elk", {"scan_impl": "quasi_deer", "damping": 1.0, "max_iters": 800}))


def get_config(arg="full"):
    """Fields shared by every run (alone: the sequential reference)."""
    if arg not in VARIANTS:
        raise ValueError(f"parallel_in_time: unknown variant {arg!r}; valid: {list(VARIANTS)}")
    config = dict(
        cell="elman",
        task="parity_check",
        width=32,
        depth=1,
        train_length=40,
        min_train_length=1,
        curriculum="uniform",
        steps=1000,
        batch_size=64,
        seeds=2,
        learning_rate=3e-3,
        eval_lengths=(40, 100, 200),
        eval_size=64,
        log_every=250,
    )
    if arg == "paper":
        config.update(width=64, train_length=1000, steps=10_000, eval_lengths=(1000, 10_000),
                      log_every=1000, checkpoint_every=2000)
    if arg == "smoke":
        config.update(width=8, train_length=4, steps=3, batch_size=4, eval_lengths=(4, 8),
                      eval_size=8, log_every=3)
    return config


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    return [dict(name=f"elman-{name}", label=f"elman-{name}", cell_hparams=hparams)
            for name, hparams in SOLVERS]
