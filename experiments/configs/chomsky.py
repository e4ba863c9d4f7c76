"""The Chomsky hierarchy at paper strength: every task, the paper's protocol and selection rule.

    python -m seqbench.sweep --config=experiments/configs/chomsky.py --runs=experiments/runs/chomsky
    python -m seqbench.sweep --config=experiments/configs/chomsky.py:smoke --runs=/tmp/smoke   # seconds
    python -m seqbench.sweep --config=experiments/configs/chomsky.py --runs=experiments/runs/chomsky --only=parity_check

Published (Delétang et al., "Neural Networks and the Chomsky Hierarchy", ICLR 2023, Table 2):
trained on lengths 1..40 (one length per batch, drawn uniformly) and scored by the mean
accuracy over every length 41..500, reported as the best of 10 seeds x 3 learning rates after
1,000,000 steps of batch 128. The RNN and the LSTM reach 100% on the four regular tasks
(parity_check, even_pairs, cycle_navigation, modular_arithmetic) while the Transformer does not
(near chance on parity_check); no model without an external stack or tape generalises on the
context-free and context-sensitive tasks (the LSTM's counter solves bucket_sort). Not in the
paper: the diagonal linear recurrences; Grazzi et al. (ICLR 2025, "Unlocking State-Tracking in
Linear RNNs Through Negative Eigenvalues") prove that a diagonal recurrence whose eigenvalues
lie in [0, 1] cannot compute parity at finite precision and find that [-1, 1]
(`negative_eigenvalues=True`) lets Mamba learn it.

seqbench got, in short ("full", this 2-core CPU, since 2026-12-01): the RNN and the LSTM
generalise on parity_check and even_pairs on every seed, attention does not (chance on
parity_check); the RNN's cycle_navigation best-of is 1.000; modular_arithmetic and the LSTM's
cycle_navigation in seqbench's body are not reproduced at this budget (the paper's bare LSTM
finds the exact cycle_navigation solution on 3 seeds of 15: a lottery); at 10x the steps
("longer") the LSTM reaches 0.992-1.000 on modular_arithmetic at every length to 500 on every
seed, exact on 3 of 5 (mean 0.9998; the paper 1.000), the paper's bare LSTM too (exact on 4 of
5, mean 0.9999, where at 3,000 steps four seeds had not left chance), and the RNN fits its
training lengths on 2 seeds of 5 and generalises approximately (best seed 0.443, chance 0.2; the
paper 1.000), the paper's bare RNN on 1 seed of 5 (0.804; at 300,000 steps under way); the
RNN is exact on cycle_navigation at every length to 500 on every seed (1.000); the paper's
bare LSTM holds cycle_navigation's counter on every seed (0.992-1.000 at every length to 500, 4
of 5 exact), where the LSTM in seqbench's body gains little (best seed 0.521: 0.99 to length
61, then falling to chance). No LSTM that keeps
part of seqbench's body is exact there on any seed ("body": 0 of 50 at 3,000 steps, removing
the MLP, the norms, the skip connection, the embedding or AdamW's schedule, or widening to 256,
one at a time or together), against 3 of 15 for the bare LSTM at 3,000 steps and 4 of 5 at
30,000 (the fifth at 0.992-1.000): the budget limited the bare model, and at 10x the steps the
body, not one part of it alone, is what keeps seqbench's LSTM from the counter. The extension:
mamba with negative eigenvalues solves parity_check on every seed; lru, mamba and rg_lru
without them do not, as Grazzi et al. predict; none of the six solves the other regular tasks
here (even_pairs and modular_arithmetic at chance, cycle_navigation at most 0.32: its exact
solution is a rotation). No model generalises on the context-free and context-sensitive
tasks, as published, except the LSTM on missing_duplicate_string, whose hidden bit is the parity
of the visible ones (a regular task), and attention on bucket_sort (0.97 beyond the training
lengths, above the 0.90 of a blind guess that knows only the length: it counts; the LSTM counts
to ~3-4 times the training length, 0.79). Each row's numbers, beside Table 2's, with what was
tried where they differ: BUILD_NOTES.md, "The Chomsky table, complete"; the runs:
experiments/runs/chomsky; the sweep resumes where it stopped. Each run is one (task, cell,
learning rate) with 5 seeds; the paper's statistic is the best score over a (task, cell)'s runs
and seeds, ours the mean and 95% interval over the seeds of the learning rate with the best
in-distribution accuracy (never the test lengths).

Variants:
- "paper" (a GPU job, not run here): the paper's models and protocol exactly. RNN and LSTM are
  bare: one-hot tokens -> one 256-unit layer -> linear readout (`depth=1, mlp_expand=0,
  norm=False, residual=False, input_encoding="one_hot"`); Adam at a constant learning rate in
  {1e-4, 3e-4, 5e-4} after global-norm clipping at 1 (their `training.py`), no weight decay;
  one length per batch (`uniform_batch`); 1,000,000 steps of batch 128; 10 seeds; every length
  41..500 on 512 test sequences each. Their Transformer is an encoder (see ATTENTION below).
- "full" (this 2-core CPU, runs across sittings): the models in seqbench's body (embedding,
  RMSNorm, residual, gated MLP) at width 128 (attention: 2 blocks of width 64), which learn in
  thousands of steps where the bare models sit at chance (BUILD_NOTES.md, "Toward paper
  strength"); AdamW with warm-up and cosine decay at lr 1e-3 and 3e-3; 3,000 steps of batch
  128; 5 seeds; lengths 10, 20, 30, 40 and 41, 51, ..., 491, 500 (47 lengths beyond training),
  128 test sequences each (attention: 64). The sweep's order: the
  paper's models on the regular tasks, then its bare models, the linear recurrences on
  parity_check (Grazzi et al.'s claim; with rg_lru-neg-lowinit), the paper's models on the
  context-free and context-sensitive tasks, and last the linear recurrences on the other
  regular tasks.
  On the regular tasks also the paper's bare RNN and LSTM ("elman-bare", "lstm-bare": the
  "paper" variant's model and optimiser at this variant's budget and rates, which are above
  the paper's 1e-4..5e-4 because 3,000 steps are 0.3% of its 1,000,000).
- "main" (the README's main job, minutes): parity_check, the regular task that separates the
  paper's models most, for elman, lstm and attention as in "full" (3,000 steps) but at lr 1e-3
  only, with 3 seeds and 10 evaluation lengths up to 500. It keeps the full protocol's steps
  because shorter runs leave an Elman seed at chance (2026-12-01, this CPU, scores of the 3
  seeds): 1,000 steps at a constant rate [1.000, 1.000, 0.535]; 2,000 steps with warm-up and
  cosine decay [1.000, 1.000, 0.516]; 3,000 steps [1.000, 1.000, 1.000]. It costs about 25
  minutes on 2 cores, most of it attention's.
- "longer" (this CPU, across sittings; added 2026-12-07): does the budget explain the regular
  rows "full" misses? modular_arithmetic for elman and the LSTM in seqbench's body and for
  the paper's bare RNN, cycle_navigation for the LSTM and elman, then the paper's bare LSTM on
  cycle_navigation and modular_arithmetic (the slowest); "full"'s runs at the rate it
  selected for each on in-distribution accuracy (`LONGER`) trained for 30,000 steps (10x; 3% of
  the paper's), nothing else changed; labelled "<name>-30k" ("elman-30k", ...,
  "lstm-bare-30k") in the same runs folder. Last, the paper's bare RNN on modular_arithmetic at
  300,000 steps ("elman-bare-300k", 100x; ~7 h alone, across sittings).
    python -m seqbench.sweep --config=experiments/configs/chomsky.py:longer --runs=experiments/runs/chomsky
- "body" (this CPU; added 2026-12-07): which part of seqbench's body keeps the LSTM from
  cycle_navigation's exact counter? "full"'s LSTM run at 3e-3 with one part at a time replaced
  by the bare model's (`BODY_ABLATION`), labelled "lstm-no-mlp", "lstm-no-norm", "lstm-adam",
  "lstm-no-residual", "lstm-w256", "lstm-one-hot"; then the parts together, cumulatively
  toward the bare model (`BODY_PATH`, added in the forty-ninth session): "lstm-linear-head" (no
  MLP, no norms), "lstm-linear-head-adam" (and the bare model's optimiser), "lstm-bare-w128"
  (the bare model at width 128), "lstm-linear-head-adam-w256" (the linear head at width 256);
  then 10 more seeds of the bare model at widths 128 and 256 (`BODY_MORE_SEEDS`, base seed 1),
  "lstm-bare-w128-10more" and "lstm-bare-10more"; all in the same runs folder.
    python -m seqbench.sweep --config=experiments/configs/chomsky.py:body --runs=experiments/runs/chomsky
- "smoke": a few runs at toy size (3 steps, width 8), for the tests.
"""

from seqbench import tasks as task_registry

VARIANTS = ("full", "main", "longer", "body", "smoke", "paper")
# The README's main job: the regular slice that separates the paper's models, in minutes.
MAIN_TASKS = ("parity_check",)
MAIN_LENGTHS = (10, 20, 30, 40, 41, 60, 100, 200, 300, 500)
REGULAR = ("parity_check", "even_pairs", "cycle_navigation", "modular_arithmetic")
CONTEXT_FREE = ("stack_manipulation", "reverse_string", "modular_arithmetic_brackets",
                "solve_equation")
CONTEXT_SENSITIVE = ("duplicate_string", "missing_duplicate_string", "odds_first",
                     "binary_addition", "binary_multiplication", "compute_sqrt", "bucket_sort")
# Lengths 10..40 in training (in-distribution accuracy, which picks the learning rate) and
# 41..500 beyond it in steps of 10: the paper scores every length 41..500.
CPU_LENGTHS = (10, 20, 30, 40) + tuple(range(41, 500, 10)) + (500,)
# The paper's Transformer (an encoder with sin/cos positions) becomes seqbench's causal
# attention cell with RoPE in the residual body: blocks of width 64, 8 heads, MLP x4; 5 blocks
# as the paper in "paper", 2 on this CPU (a 5-block step costs 3x the LSTM's: ~50 min a run).
# Its evaluation holds whole sequences, so it scores 64 test sequences per length (5 seeds x
# 128 rows at length 500 would need ~16 GB).
ATTENTION = dict(cell="attention", depth=2, width=64, mlp_expand=4, norm=True, residual=True,
                 input_encoding="embedding", cell_hparams={"num_heads": 8}, eval_size=64)
# The paper's RNN and LSTM: one-hot tokens -> one 256-unit layer -> linear readout, trained by
# Adam at a constant rate after global-norm clipping at 1, no weight decay (their training.py).
BARE = dict(depth=1, mlp_expand=0, norm=False, residual=False, input_encoding="one_hot",
            width=256, lr_schedule="constant", weight_decay=0.0, clip_norm=1.0)
LEARNING_RATES = {"full": (3e-3, 1e-3), "main": (1e-3,), "paper": (1e-4, 3e-4, 5e-4),
                  "smoke": (1e-2,)}
# "longer": the rows "full" does not reproduce on the regular tasks, trained 10x longer at the
# rate "full" selected for them on in-distribution accuracy ("full"'s model name, task, rate);
# each is labelled "<name>-30k". In the order they run: the table's models first, the paper's
# bare LSTM (the slowest: ~0.4 s a step) last, cycle_navigation first (added in the forty-ninth
# session: at 3,000 steps its exact seeds are 3 of 15, "body"'s BODY_MORE_SEEDS).
# Last (added in the fifty-first session), the paper's bare RNN on modular_arithmetic at 100x
# (300,000 steps, 30% of the paper's; ~7 h alone): at 30,000 steps two seeds of five had left
# chance, the first near step 15,000, the learning curve a race between seeds and steps.
LONGER_STEPS = 30_000
LONGER = (("elman", "modular_arithmetic", 1e-3, LONGER_STEPS),
          ("lstm", "modular_arithmetic", 3e-3, LONGER_STEPS),
          ("elman-bare", "modular_arithmetic", 1e-3, LONGER_STEPS),
          ("lstm", "cycle_navigation", 3e-3, LONGER_STEPS),
          ("elman", "cycle_navigation", 1e-3, LONGER_STEPS),
          ("lstm-bare", "cycle_navigation", 3e-3, LONGER_STEPS),
          ("lstm-bare", "modular_arithmetic", 3e-3, LONGER_STEPS),
          ("elman-bare", "modular_arithmetic", 1e-3, 10 * LONGER_STEPS))

# "body": which part of seqbench's body keeps the LSTM from cycle_navigation's exact counter,
# which the paper's bare LSTM finds in "full"'s 3,000 steps (on 3 seeds of 15)? "full"'s run
# (lstm, 3e-3) with one part replaced by the bare model's, one run each, in the order they run:
# the gated MLP (a nonlinear readout could decode an approximate count), the RMSNorms (the
# head's is nonlinear too), the optimiser (constant Adam after clipping, no weight decay), the
# skip connection, the width (256), the input (one-hot tokens, which leave no skip connection).
BODY_ABLATION = (("lstm-no-mlp", dict(mlp_expand=0)), ("lstm-no-norm", dict(norm=False)),
                 ("lstm-adam", dict(lr_schedule="constant", weight_decay=0.0)),
                 ("lstm-no-residual", dict(residual=False)), ("lstm-w256", dict(width=256)),
                 ("lstm-one-hot", dict(input_encoding="one_hot", residual=False)))
# then the parts together, cumulatively from "full" toward the bare model: a linear readout of
# the recurrence (no MLP, no norms), with the bare model's optimiser, then the last two parts in
# both orders: the bare model at width 128 (one-hot tokens, no skip connection), and the linear
# head at width 256; the other part completes the bare LSTM ("lstm-bare")
LINEAR_HEAD = dict(mlp_expand=0, norm=False)
LINEAR_HEAD_ADAM = dict(LINEAR_HEAD, lr_schedule="constant", weight_decay=0.0)
BARE_W128 = dict(BARE, width=128)
BODY_PATH = (("lstm-linear-head", LINEAR_HEAD), ("lstm-linear-head-adam", LINEAR_HEAD_ADAM),
             ("lstm-bare-w128", BARE_W128),
             ("lstm-linear-head-adam-w256", dict(LINEAR_HEAD_ADAM, width=256)))
# and 10 more seeds (base seed 1; "full" trains base seed 0's 5) of the bare model at both
# widths, labelled "<label>-10more": is the width what the bare model's counter needs, or are 3
# exact seeds of 5 at width 256 against 0 of 5 at 128 a seed lottery?
BODY_MORE_SEEDS = (("lstm-bare-w128", BARE_W128), ("lstm-bare", BARE))
BODY_ABLATION_RUN = ("lstm", "cycle_navigation", 3e-3)


def get_config(arg="full"):
    """Fields shared by every run (alone: the LSTM on parity_check at the first rate)."""
    if arg not in VARIANTS:
        raise ValueError(f"chomsky: unknown variant {arg!r}; valid: {list(VARIANTS)}")
    config = dict(
        cell="lstm",
        task="parity_check",
        width=128,
        depth=1,
        train_length=40,  # Delétang et al.: training lengths U[1, 40], one per batch
        min_train_length=1,
        curriculum="uniform_batch",
        steps=3000,
        batch_size=128,
        seeds=5,
        # "longer" and "body": per run
        learning_rate=LEARNING_RATES["full" if arg in ("longer", "body") else arg][0],
        eval_lengths=CPU_LENGTHS,
        eval_size=128,
        log_every=500,
        checkpoint_every=1000,
    )
    if arg == "paper":
        config.update(BARE, steps=1_000_000, seeds=10, eval_lengths=(), eval_size=512,
                      log_every=10_000, checkpoint_every=50_000)
    if arg == "main":
        config.update(seeds=3, eval_lengths=MAIN_LENGTHS)
    if arg == "longer":
        config.update(steps=LONGER_STEPS, log_every=1000)  # elman-bare-300k: its own (`LONGER`)
    if arg == "smoke":
        config.update(width=8, train_length=4, steps=3, batch_size=4, seeds=2,
                      eval_lengths=(4, 8), eval_size=8, log_every=3)
    return config


def cells(arg):
    """(name prefix, overrides) of the compared models: the paper's three, the paper's bare RNN
    and LSTM ("full" and "longer" only: there elman and lstm are in seqbench's body), the linear
    recurrences, and ("full" only) rg_lru-neg with a lower initial a^c (parity_check only)."""
    classic = [("elman", dict(cell="elman")), ("lstm", dict(cell="lstm"))]
    bare = ([(f"{name}-bare", dict(cell=name, **BARE)) for name in ("elman", "lstm")]
            if arg in ("full", "longer") else [])
    attention = ATTENTION if arg != "smoke" else dict(cell="attention")
    if arg == "paper":
        attention = {**attention, "depth": 5}
    linear = []
    for cell in ("lru", "mamba", "rg_lru"):
        real = {"theta_max": 0.0} if cell == "lru" else {}  # the LRU's pair is real-valued
        linear += [(cell, dict(cell=cell, cell_hparams=real)),
                   (f"{cell}-neg", dict(cell=cell, cell_hparams={**real,
                                                                 "negative_eigenvalues": True}))]
    # rg_lru-neg's initialisation keeps every 2 a_t - 1 in [0.8, 1) (a^c in [0.9, 0.999]); this
    # row draws a^c from [0.01, 0.999] so that sign flips are within reach from the first step
    lowinit = ([("rg_lru-neg-lowinit", dict(cell="rg_lru", cell_hparams={
        "negative_eigenvalues": True, "a_min": 0.01, "a_max": 0.999}))]
        if arg == "full" else [])
    return classic + [("attention", attention)], bare, linear, lowinit


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    paper_cells, bare_cells, linear_cells, lowinit_cells = cells(arg)
    if arg == "longer":
        overrides = dict(paper_cells + bare_cells)
        return [run(f"{name}-{steps // 1000}k", {**overrides[name], "steps": steps}, task, lr)
                for name, task, lr, steps in LONGER]
    if arg == "body":
        name, task, lr = BODY_ABLATION_RUN
        overrides = dict(paper_cells)[name]
        return ([run(label, {**overrides, **changes}, task, lr)
                 for label, changes in BODY_ABLATION + BODY_PATH]
                + [run(f"{label}-10more", {**overrides, **changes, "seed": 1, "seeds": 10}, task,
                       lr) for label, changes in BODY_MORE_SEEDS])
    tasks = REGULAR + CONTEXT_FREE + CONTEXT_SENSITIVE
    if arg == "smoke":
        tasks, linear_cells = ("parity_check", "reverse_string"), linear_cells[2:4]
    if arg == "main":
        tasks, linear_cells = MAIN_TASKS, []
    regular = [task for task in tasks if task in REGULAR]
    others = [task for task in tasks if task not in REGULAR]
    # the extension's claim (parity) before the paper's other rows, its other tasks last
    claim = [task for task in regular if task == "parity_check"]
    order = ([(task, cell) for task in regular for cell in paper_cells]  # the paper's regular rows
             + [(task, cell) for task in regular for cell in bare_cells]  # ... by its bare models
             + [(task, cell) for task in claim for cell in linear_cells]  # the extension's claim
             + [(task, cell) for task in claim for cell in lowinit_cells]  # ... a follow-up
             + [(task, cell) for task in others for cell in paper_cells]  # the paper's CF/CS rows
             + [(task, cell) for task in regular if task not in claim for cell in linear_cells])
    return [run(prefix, overrides, task, lr)
            for task, (prefix, overrides) in order for lr in LEARNING_RATES[arg]]


def run(prefix, overrides, task, learning_rate):
    """One run of the sweep, named "<prefix>-<task>-lr<rate>" and labelled by `prefix`; its
    lengths start at 1, or at the task's shortest (3 for solve_equation and binary arithmetic)."""
    return dict(name=f"{prefix}-{task}-lr{learning_rate:g}", label=prefix, task=task,
                learning_rate=learning_rate, min_train_length=task_registry.get(task).min_length,
                **overrides)
