"""Exact RTRL against truncated BPTT on a memory whose dependency always crosses a segment.

    python -m seqbench.sweep --config=experiments/configs/rtrl.py --runs=experiments/runs/rtrl
    python -m seqbench.sweep --config=experiments/configs/rtrl.py:smoke --runs=/tmp/smoke   # seconds

Published: real-time recurrent learning carries dh_t/dθ forward, so a model trained on a stream
in short pieces still gets the untruncated gradient, which for element-wise recurrences costs
only the parameters' own size per sequence (Irie et al. 2023, "Exploring the Promise and Limits
of Real-Time Recurrent Learning"; Zucchet et al. 2023, "Online learning of long-range
dependencies"). Truncated BPTT over the same pieces cannot assign credit further back than one
piece.

The task: `passkey` with one digit (tokens: periodic filler, the key marker and the digit at a
uniform position of the first 64 steps, then the query at step 64 and the answer at 65). Trained
at length 64 exactly, in segments of K = 16, the query starts the fifth segment, so the digit
always lies in an earlier segment than the loss that needs it: truncated BPTT gets no gradient
from the answer to the digit's storage, only to the read-out of whatever the untrained
recurrence happens to keep. Evaluated at 64, 256 and 1,024 (the digit up to 1,000 steps back).

Runs (minGRU width 64, the bare one-layer body: one-hot inputs, linear read-out, so
`gradient="rtrl"` is exact; 4,000 steps of batch 32, AdamW 1e-2, 5 seeds):
- "bptt": backpropagation through the whole 66-step sequence (the reference);
- "tbptt16": truncated BPTT, 16-step segments;
- "rtrl16": exact RTRL over the same 16-step segments (the gradient of "bptt", memory O(K)).

seqbench got (this 2-core CPU, 2026-12-01): see BUILD_NOTES.md, "Exact RTRL".
Variants: "full" (above); "paper" (a long stream, not run here: length 4,096 in 64-step
segments, width 128, 10,000 steps; what RTRL is for, BPTT's memory growing 64x); "smoke" (toy
size, for the tests).
"""

VARIANTS = ("full", "smoke", "paper")
RUNS = (("bptt", {"tbptt": 0, "gradient": "bptt"}),  # named and segmented per variant below
        ("tbptt", {"gradient": "bptt"}),
        ("rtrl", {"gradient": "rtrl"}))


def get_config(arg="full"):
    """Fields shared by every run (alone: the full-BPTT reference)."""
    if arg not in VARIANTS:
        raise ValueError(f"rtrl: unknown variant {arg!r}; valid: {list(VARIANTS)}")
    config = dict(
        cell="mingru",
        task="passkey",
        task_hparams={"num_digits": 1},
        width=64,
        depth=1,
        input_encoding="one_hot",
        norm=False,
        residual=False,
        mlp_expand=0,
        train_length=64,
        curriculum="fixed",
        steps=4000,
        batch_size=32,
        seeds=5,
        learning_rate=1e-2,
        eval_lengths=(64, 256, 1024),
        eval_size=256,
        log_every=500,
    )
    if arg == "smoke":
        config.update(width=8, train_length=16, steps=3, batch_size=4, seeds=1,
                      eval_lengths=(16, 32), eval_size=8, log_every=3)
    if arg == "paper":
        config.update(width=128, train_length=4096, steps=10_000, eval_lengths=(4096, 16_384),
                      log_every=1000, checkpoint_every=2000)
    return config


SEGMENTS = {"full": 16, "smoke": 4, "paper": 64}  # each divides the training length


def get_sweep(arg="full"):
    get_config(arg)  # checks the variant
    runs = []
    for name, fields in RUNS:
        if "tbptt" not in fields:  # a segmented run: named after its segment length
            name, fields = f"{name}{SEGMENTS[arg]}", {**fields, "tbptt": SEGMENTS[arg]}
        runs.append(dict(name=f"mingru-{name}", label=f"mingru-{name}", **fields))
    return runs
