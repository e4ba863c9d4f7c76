"""Regular tasks of the Chomsky hierarchy: recurrent networks generalise, attention does not.

    python -m seqbench.sweep --config=experiments/configs/chomsky_regular.py --runs=experiments/runs/chomsky_regular
    python -m seqbench.sweep --config=experiments/configs/chomsky_regular.py:smoke --runs=/tmp/smoke   # seconds

Published (Delétang et al., "Neural Networks and the Chomsky Hierarchy", ICLR 2023, Table 2):
trained on lengths drawn uniformly from 1..40 and scored by the mean accuracy over every length
41..500, the RNN and the LSTM reach 100% on the regular tasks (parity_check, even_pairs,
cycle_navigation, modular_arithmetic) while the Transformer stays far below (near chance on
parity_check). Their score is the best over 10 seeds x 3 learning rates after 1,000,000 steps at
batch size 128. Not in the paper: the diagonal linear recurrences; Grazzi et al. (ICLR 2025,
"Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues") prove that a diagonal
recurrence whose eigenvalues lie in [0, 1] cannot compute parity and find that allowing [-1, 1]
(`negative_eigenvalues=True`) lets Mamba solve it.

seqbench got (variant "full", this 2-core CPU; score = mean accuracy over the evaluated lengths
> 40, mean ± 95% CI half-width over 3 seeds; see experiments/leaderboard/leaderboard.md):
  attention-cycle_navigation       in-dist 0.19 ± 0.10  score 0.19 ± 0.01 (best seed 0.20)  eff. length [40, 500, 10]
  attention-parity_check           in-dist 0.51 ± 0.02  score 0.53 ± 0.00 (best seed 0.53)  eff. length [500, 500, 500]
  elman-cycle_navigation           in-dist 0.51 ± 0.42  score 0.25 ± 0.18 (best seed 0.33)  eff. length [10, 10, 10]
  elman-parity_check               in-dist 0.67 ± 0.72  score 0.67 ± 0.72 (best seed 1.00)  eff. length [500, 60, 500]
  lstm-cycle_navigation            in-dist 0.94 ± 0.00  score 0.59 ± 0.08 (best seed 0.62)  eff. length [41, 41, 41]
  lstm-parity_check                in-dist 0.84 ± 0.69  score 0.84 ± 0.68 (best seed 1.00)  eff. length [500, 500, 500]
  rg_lru-cycle_navigation          in-dist 0.91 ± 0.02  score 0.49 ± 0.06 (best seed 0.52)  eff. length [41, 41, 10]
  rg_lru-neg-cycle_navigation      in-dist 0.92 ± 0.03  score 0.49 ± 0.04 (best seed 0.51)  eff. length [41, 41, 41]
  rg_lru-neg-parity_check          in-dist 0.65 ± 0.25  score 0.50 ± 0.06 (best seed 0.52)  eff. length [10, 10, 10]
  rg_lru-parity_check              in-dist 0.62 ± 0.16  score 0.49 ± 0.07 (best seed 0.52)  eff. length [10, 10, 10]
Run time: 3.4 min for the 10 runs (sum of the sweep's per-run times on 2026-11-30, machine
otherwise idle; rerun after commit 2791822, as the README's main job from a fresh clone). Comparison with the paper: BUILD_NOTES.md, "Reproductions".

Variants:
- "full" (run): 2 of the 4 regular tasks (parity_check, cycle_navigation) x 5 cells (elman,
  lstm, attention, rg_lru, rg_lru with negative eigenvalues) = 10 runs; width 32, depth 1,
  1,000 steps of batch 32, 3 seeds, one learning rate (1e-2) for every cell, and 5 lengths beyond
  training (41, 60, 100, 200, 500) instead of all 460 lengths 41..500.
- "paper" (not run; hours on a GPU): the 4 tasks x 9 cells the issue asks for (adds lru and
  mamba, each with and without negative eigenvalues), width 256, batch 128, 100,000 steps (the
  paper trains 1,000,000), lr 3e-4, 5 seeds, every length 41..500.
- "smoke": every run of "full" at toy size (3 steps, width 8), for the tests.
"""

VARIANTS = ("full", "smoke", "paper")
CHOMSKY_GRID = (10, 40, 41, 60, 100, 200, 500)  # 2 training lengths + 5 beyond (41..500 reduced)


def get_config(arg="full"):
    """Fields shared by every run (alone: the LSTM on parity_check)."""
    if arg not in VARIANTS:
        raise ValueError(f"chomsky_regular: unknown variant {arg!r}; valid: {list(VARIANTS)}")
    config = dict(
        cell="lstm",
        task="parity_check",
        width=32,  # the paper's RNN/LSTM have 256 units; 32 is enough for these automata
        depth=1,
        train_length=40,  # Delétang et al.: training lengths U[1, 40]
        min_train_length=1,
        curriculum="uniform",
        steps=1000,
        batch_size=32,
        seeds=3,
        learning_rate=1e-2,  # 3e-3 had not started to learn parity after 300 steps (pilot)
        eval_lengths=CHOMSKY_GRID,
        eval_size=128,  # test sequences per length
        log_every=250,
    )
    if arg == "paper":
        config.update(width=256, batch_size=128, steps=100_000, learning_rate=3e-4, seeds=5,
                      eval_lengths=(), eval_size=256, log_every=1000, checkpoint_every=5000)
    if arg == "smoke":
        config.update(width=8, train_length=4, steps=3, batch_size=4, seeds=2,
                      eval_lengths=(4, 8), eval_size=8, log_every=3)
    return config


def cells(arg):
    """(name prefix, cell, cell_hparams) of the compared cells."""
    plain = [("elman", "elman", {}), ("lstm", "lstm", {}), ("attention", "attention", {})]
    linear = ("lru", "mamba", "rg_lru") if arg == "paper" else ("rg_lru",)
    for cell in linear:
        # the LRU's complex eigenvalues already reach the negative axis: its pair is real-valued
        real = {"theta_max": 0.0} if cell == "lru" else {}
        plain += [(cell, cell, real), (f"{cell}-neg", cell, {**real, "negative_eigenvalues": True})]
    if arg == "paper":
        plain.append(("lru-complex", "lru", {}))
    return plain


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    tasks = (("parity_check", "even_pairs", "cycle_navigation", "modular_arithmetic")
             if arg == "paper" else ("parity_check", "cycle_navigation"))
    return [dict(name=f"{prefix}-{task}", cell=cell, task=task, cell_hparams=hparams)
            for task in tasks for prefix, cell, hparams in cells(arg)]
