"""MQAR at Zoology strength: recall accuracy against state size, attention against recurrences.

    python -m seqbench.sweep --config=experiments/configs/mqar.py --runs=experiments/runs/mqar
    python -m seqbench.sweep --config=experiments/configs/mqar.py:smoke --runs=/tmp/smoke   # seconds

Published (Arora, Eyuboglu et al., "Zoology: Measuring and Improving Recall in Efficient
Language Models", ICLR 2024, Figure 2): on multi-query associative recall, attention reaches
~100% at every model width, while recurrent and gated-convolution models need a width (hence a
state) that grows with the number of key-value pairs: accuracy rises with the state size, from
near chance at small widths. Protocol, read from the authors' code (HazyResearch/zoology,
zoology/experiments/paper_configs/iclr24_zoology_figure2/configs.py, zoology/data/
multiquery_ar.py, zoology/model.py, zoology/train.py): vocabulary 8,192, keys and values from
disjoint halves; four panels (sequence length, pairs) = (64, 4), (128, 8), (256, 16),
(512, 64), each with 100,000 training and 3,000 test sequences and the filler token 0
(`random_non_queries=False`); queries placed by a power law (a = 0.01); loss on the query
positions only. Model: 2 blocks of LayerNorm -> sequence mixer, residual, no MLP, LayerNorm and
a readout tied to the embedding; attention with 1 head and learned absolute positions; widths
64, 128, 256, 512. AdamW (weight decay 0.1), cosine decay per epoch, no warm-up, no clipping,
64 epochs (batch 512 at lengths 64 and 128, 256 at 256, 128 at 512), early stop at 0.99;
learning rates logspace(-4, -2, 4); the plotted point is the best over the four rates, one seed.

Differences that seqbench keeps (its model body and data path): RMSNorm instead of LayerNorm,
rotary instead of learned absolute positions, an untied readout, fresh sequences every step
instead of 64 epochs over a fixed 100,000 (an endless training set can only help), a cosine per
step instead of per epoch, no early stopping, and its own recurrent cells (Zoology's figure
shows Hyena, H3, RWKV and BaseConv; seqbench has none of these exactly: mamba, gla and lru
stand for the selective, matrix-state and diagonal families). The x-axis is the state size the
run records (`state_size`: floats carried per sequence, every layer), not the width.

seqbench got ("full", in-distribution accuracy per seed; BUILD_NOTES.md, "mqar at Zoology
strength"; the sweep resumes across sittings): attention at width 64 0.999-1.000 on every seed at
both rates, at widths 16 and 32 one seed of four at 1.000, the others 0.11-0.25 (a seed
lottery at this budget); gla at 2.2e-3 0.158/0.135 at width 16 (state 512 floats) and
0.601/0.460 at width 32 (2,048): recall rises with the state, as in Zoology's Figure 2, but
0.352/0.688 at width 64 (8,192) and 0.829/0.879 at width 128 (32,768): the curve pauses at
width 64 and stays below Zoology's ~1 (not reproduced at this budget); mamba
at 2.2e-3 0.186/0.174 at width 16 (state 1,216) and 0.900/0.305 at width 32 (2,432: one seed
finds recall, one does not), 0.991/0.309 at width 64 (4,864: the same split) and 0.999/1.000
at width 128 (9,728: both seeds recall, above 0.9 as in Zoology's Figure 2);
gated_deltanet at 2.2e-3 0.007/0.825 at width 8 (state 272: one seed finds recall), 0.798/0.984
at width 16 (state 800), 1.000/1.000 at widths 32, 64 and 128 (2,624, 9,344 and 35,072 floats):
the delta rule recalls better than gla and mamba do with 2,048-2,432 floats; mamba2 (d_state
64) 1.000/1.000 at width 16 (5,056 floats) and 1.000/1.000 at width 32 (9,344), 0.965/0.937 at
width 8 (2,912), 0.189/0.432 and 0.865/0.855 at width 8 with d_state 4 and 16 (272 and 800);
deltaproduct (n_h = 2) 0.702/0.170 at width 8 (368), 0.988/0.994 at width 16 (992) and
1.000/1.000 at width 32 (3,008); rwkv7 0.665/0.540 at width 8 (144), 1.000/0.999 at width 16
(544) and 1.000/1.000 at width 32 (2,112); hgrn2 0.004/0.004 at width 16 (512) and 0.979/0.951
at width 32 (2,048); mlstm 0.546/0.663 at width 16 (546) and 0.988/0.982 at width 32 (2,114);
path_attention 1.000/1.000 at widths 16 and 32 (its key-value cache: 4,160 and 8,320 floats).
Every run is done (all 62, 2026-12-06); the 4.6e-4 halves are in BUILD_NOTES.md: none beats
its 2.2e-3 run, so no point of the curves moves.

Variants:
- "paper" (a GPU job, not run here): the protocol above in seqbench's terms: 4 panels x widths
  64..512 x cells, the four learning rates as one grid program (`learning_rates`), 3 seeds,
  steps = 64 epochs of 100,000 sequences at Zoology's batch sizes, 3,000 test sequences.
- "full" (this 2-core CPU, runs across sittings): the first panel (length 64, 4 pairs) with a
  vocabulary of 512 (8,192 makes the readout most of a CPU step), 10,000 steps of batch 64
  (640,000 sequences: a tenth of Zoology's), two of Zoology's rates (4.6e-4, 2.2e-3), 2 seeds;
  attention at widths 16, 32, 64; gla and mamba at widths 16, 32, 64, 128; gated_deltanet
  (added 2026-12-01, after the others in the queue) at 8, 16, 32, 64, 128 (8 added 2026-12-03:
  it recalls at 16 already); since 2026-12-03, queued after them, the rest of the current
  generation (mamba2, deltaproduct, rwkv7, hgrn2, mlstm, path_attention) at 16 and 32, and
  mamba2, deltaproduct and rwkv7 at 8 too (added 2026-12-03: each recalls at 16 on both seeds,
  so the curve needs a smaller state to rise from), and mamba2 at width 8 with d_state 16 and
  4 (`SMALL_D_STATES`, added 2026-12-03: at d_state 64 width 8 still recalls). The runs in
  `FULL_GRID_RUNS` trained both rates as one grid program; since 2026-12-02 the others are one
  run per rate (named `-lr0.0022`, `-lr0.00046`), every width at 2.2e-3 first, so that each
  fits a session.
- "smoke": every cell at toy size (3 steps), for the tests.
"""

import numpy as np

VARIANTS = ("full", "smoke", "paper")
ZOOLOGY_RATES = tuple(float(rate) for rate in np.logspace(-4, -2, 4))  # 1e-4 .. 1e-2
# (length, pairs, batch) of Zoology's four panels; steps = 64 epochs of 100,000 sequences
PANELS = ((64, 4, 512), (128, 8, 512), (256, 16, 256), (512, 64, 128))
EPOCH = 100_000
CELLS = {
    # Zoology's attention: 1 head
    "attention": {"num_heads": 1},
    # Zoology's Mamba block (expand 2, conv 4, d_state 16): state 2·D·16 a layer
    "mamba": {"block": True},
    # gated linear attention, one head: a D x D matrix state a layer
    "gla": {"num_heads": 1},
    # a diagonal recurrence whose state follows the width (d_state = width, set per run)
    "lru": {},
    # the delta rule with Mamba-2's decay (Yang et al. 2025), one head: a D x D matrix state
    "gated_deltanet": {"num_heads": 1},
    # the current generation's other matrix states, one head each ("full": widths 16 and 32)
    # Mamba-2 at Mamba2Simple's defaults (d_state 64, expand 2, conv 4; head dim 128, or one
    # head below width 64: `width_hparams`)
    "mamba2": {"d_state": 64},
    "deltaproduct": {"num_heads": 1},
    "hgrn2": {"num_heads": 1},
    "mlstm": {"num_heads": 1},
    "rwkv7": {"num_heads": 1},
    # attention with PaTH's Householder position encoding, one head
    "path_attention": {"num_heads": 1},
}
# "full": the runs trained as one grid program of both rates (2026-12-01); every other run of
# "full" is one run per rate, the rate that won or tied every finished comparison (2.2e-3) first.
# On this CPU a grid program costs per step what its rates cost apart (BUILD_NOTES, "Cost of a
# reproduction"), a grid's members are the single-rate runs (tests/test_train.py), and a run
# must finish inside one 3-hour session here (checkpoints do not outlive one): a recurrent
# grid run took 2 h 8 min (gla-w16); each half should fit a session.
FULL_GRID_RUNS = ("attention-w16", "attention-w32", "attention-w64", "gla-w16")
WIDTHS = {"paper": {cell: (64, 128, 256, 512) for cell in CELLS},
          "full": {"attention": (16, 32, 64), "gla": (16, 32, 64, 128),
                   "mamba": (16, 32, 64, 128),
                   # width 8 too: at 16 it already recalls (0.80/0.98), so the curve needs a
                   # smaller state to start from (Zoology's Figure 2 starts near chance)
                   "gated_deltanet": (8, 16, 32, 64, 128),
                   # the rest of the current generation (issue 22), queued after the others:
                   # a point below and one at the width where gla and mamba start to recall;
                   # width 8 too where width 16 already recalls on both seeds (2026-12-03)
                   **{cell: (16, 32) for cell in ("hgrn2", "mlstm", "path_attention")},
                   **{cell: (8, 16, 32) for cell in ("mamba2", "deltaproduct", "rwkv7")}},
          "smoke": {cell: (8,) for cell in CELLS}}
# "full": Mamba-2 again at width 8 with a smaller d_state (added 2026-12-03). Its d_state of 64
# dominates its state, so at width 8 (2,912 floats) it still recalls on both seeds; d_state 16
# and 4 carry 800 and 272 floats, the states of gated_deltanet at widths 16 and 8.
SMALL_D_STATES = {"mamba2": (16, 4)}


def width_hparams(cell, width):
    """The hyperparameters that follow the width: lru's state (d_state = width, so its state
    grows with the width as the other cells' do), Mamba-2's head dimension (128, its default,
    where 128 divides its 2 x width channels, else one head of all of them)."""
    if cell == "lru":
        return {"d_state": width}
    if cell == "mamba2":
        return {"head_dim": 128 if 2 * width % 128 == 0 else 2 * width}
    return {}


def get_config(arg="full"):
    """Fields shared by every run (alone: attention at width 64 on the first panel)."""
    if arg not in VARIANTS:
        raise ValueError(f"mqar: unknown variant {arg!r}; valid: {list(VARIANTS)}")
    length, pairs, batch = PANELS[0]
    config = dict(
        cell="attention",
        cell_hparams=CELLS["attention"],
        task="mqar",
        task_hparams={"vocab_size": 8192, "num_kv_pairs": pairs, "random_non_queries": False},
        width=64,
        depth=2,
        mlp_expand=0,  # Zoology's blocks have no MLP (state mixer: Identity)
        train_length=length,  # capacity at a fixed length, not length generalisation
        curriculum="fixed",
        steps=64 * EPOCH // batch,
        batch_size=batch,
        seeds=3,
        learning_rates=ZOOLOGY_RATES,
        lr_schedule="warmup_cosine",
        warmup_steps=0,  # cosine from the first step
        weight_decay=0.1,
        clip_norm=0.0,  # no clipping
        eval_lengths=(length,),
        eval_size=3000,
        log_every=500,
        checkpoint_every=2000,
    )
    if arg == "full":
        config.update(task_hparams={**config["task_hparams"], "vocab_size": 512}, steps=10_000,
                      batch_size=64, seeds=2, learning_rates=ZOOLOGY_RATES[1:3], eval_size=512)
    if arg == "smoke":
        config.update(task_hparams={"vocab_size": 16, "num_kv_pairs": 2,
                                    "random_non_queries": False}, train_length=16, steps=3,
                      batch_size=4, seeds=2, learning_rates=(1e-2, 1e-3), eval_lengths=(16,),
                      eval_size=8, log_every=3)
    return config


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    panels = PANELS if arg == "paper" else PANELS[:1]
    runs = []
    for length, pairs, batch in panels:
        panel = {} if (length, pairs) == PANELS[0][:2] or arg != "paper" else dict(
            train_length=length, eval_lengths=(length,), batch_size=batch,
            steps=64 * EPOCH // batch,
            task_hparams={"vocab_size": 8192, "num_kv_pairs": pairs,
                          "random_non_queries": False})
        prefix = "" if arg != "paper" else f"L{length}-kv{pairs}-"
        for cell, widths in WIDTHS[arg].items():
            for width in widths:
                hparams = {**CELLS[cell], **width_hparams(cell, width)}
                runs.append(dict(name=f"{prefix}{cell}-w{width}", label=cell, cell=cell,
                                 width=width, cell_hparams=hparams, **panel))
    if arg == "full":
        runs += [dict(name=f"{cell}-ds{d_state}-w8", label=cell, cell=cell, width=8,
                      cell_hparams={**CELLS[cell], **width_hparams(cell, 8), "d_state": d_state})
                 for cell, d_states in SMALL_D_STATES.items() for d_state in d_states]
        rates = sorted(get_config(arg)["learning_rates"], reverse=True)
        runs = [run for run in runs if run["name"] in FULL_GRID_RUNS] + [
            {**run, "name": f"{run['name']}-lr{rate:.2g}", "learning_rates": (),
             "learning_rate": rate}
            for rate in rates for run in runs if run["name"] not in FULL_GRID_RUNS]
    return runs
