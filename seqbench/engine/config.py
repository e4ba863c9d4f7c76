"""A run's configuration, declared once: `Config` and everything derived from its fields.

Each field is declared with `option(default, help, ...)`: its type (that of the default), its
valid range or choices, its help text, whether it is hashed into the run's `config_hash` and
whether a post-training run must share it with its source. From that one declaration come

- the checks (`Config.__post_init__`): every way of making a Config (flags, a config file, a
  sweep's per-run overrides, a stored `config.json`) is normalised and checked the same way,
  and a bad value is one ValueError line naming the field and what is valid;
- the command-line flags (`define_flags`, `from_flags`), with real help text and bounds;
- `HASHED_FIELDS`, `POST_TRAIN_SHARED` and `config_hash`.

A field added later gets a default that reproduces the behaviour from before it existed, so a
stored config without it (`from_json`) still describes the run that wrote it, and hashes as it.

`build(config)` then turns a Config into (cell, task, model), running every check that needs a
registry before anything compiles.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import runpy
from typing import Any

from absl import flags

from seqbench import cells, interventions, models, plugins, results, tasks
from seqbench.cells import rtrl
from seqbench.engine import curricula

PRECISIONS = ("float32", "bfloat16")
MAX_LENGTH = 2**20  # longest training or evaluation input length accepted (int32-safe sizes)
LR_SCHEDULES = ("warmup_cosine", "constant")
GRADIENTS = ("bptt", "rtrl", "rtrl_layerwise")
INPUT_ENCODINGS = models.INPUT_ENCODINGS


def option(default: Any, help: str, *, low: float | None = None, high: float | None = None,
           above: float | None = None, choices: tuple[str, ...] | None = None,
           kind: str | None = None, hashed: bool = True, shared: bool = False) -> Any:
    """One Config field.

    Args:
      default: the value when nothing sets it; its type is the field's (int, float, bool, str)
        unless `kind` says otherwise.
      help: the flag's help text.
      low, high: inclusive bounds (numbers; for "lengths", of every entry).
      above: exclusive lower bound (floats that must be positive).
      choices: the valid strings.
      kind: "hparams" (a JSON object of name -> value, stored as sorted pairs), "lengths" (a
        list of positive ints, stored as a tuple) or "floats" (a list of distinct finite
        numbers, stored as a tuple); None: the default's type.
      hashed: False for fields that change how a run is logged, saved or placed, not what it
        computes (left out of `config_hash`).
      shared: a post-training run must have the same value as the run it starts from (the same
        models and seeds).
    """
    if kind is None:
        kind = type(default).__name__
    metadata = dict(help=help, low=low, high=high, above=above, choices=choices, kind=kind,
                    hashed=hashed, shared=shared)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a run. Built from plain values and checked on construction."""

    user_module: str = option("", "A .py file or dotted module imported first, which registers "
                              "the user's own cells and tasks (seqbench.plugins).",
                              hashed=False)
    cell: str = option("lru", "Cell name (seqbench.cells.names()).", shared=True)
    task: str = option("parity_check", "Task name (seqbench.tasks.names()).", shared=True)
    cell_hparams: tuple = option((), "Extra cell hyperparameters as a JSON object.",
                                 kind="hparams", shared=True)
    task_hparams: tuple = option((), "Task difficulty settings as a JSON object.",
                                 kind="hparams", shared=True)
    width: int = option(64, "Model width (the cell's d_hidden).", low=1, shared=True)
    depth: int = option(2, "Number of blocks (cell layers).", low=1, shared=True)
    mlp_expand: int = option(2, "Gated-MLP hidden width per block as a multiple of the width "
                             "(0: no MLP).", low=0, shared=True)
    norm: bool = option(True, "RMSNorm before each cell, MLP and the readout.", shared=True)
    residual: bool = option(True, "Residual connections around each cell and MLP.", shared=True)
    input_encoding: str = option("embedding", "Token inputs: a learned embedding, or one-hot "
                                 "vectors fed straight to the first cell (real-valued inputs: "
                                 "a learned projection, or the raw features).",
                                 choices=INPUT_ENCODINGS, shared=True)
    train_length: int = option(40, "(Maximum) input length in training.", low=1,
                               high=MAX_LENGTH)
    min_train_length: int = option(1, "Shortest input length of the uniform and increasing "
                                   "curricula.", low=1, high=MAX_LENGTH)
    curriculum: str = option("fixed", "Training lengths: " + curricula.HELP,
                             choices=curricula.NAMES)
    steps: int = option(1000, "Optimiser steps.", low=1)
    batch_size: int = option(32, "Sequences per seed per step.", low=1)
    seeds: int = option(1, "Independent models trained together in one program (vmap).", low=1,
                        hashed=False, shared=True)
    seed: int = option(0, "Base random seed.", low=0, hashed=False, shared=True)
    learning_rate: float = option(1e-3, "AdamW peak learning rate (with learning_rates: the "
                                  "grid's first).", low=0.0)
    learning_rates: tuple = option((), "A grid of learning rates trained together in one "
                                   "program: every seed at every rate, vmapped (--seeds=5 "
                                   "--learning_rates=1e-4,3e-4,1e-3 is 15 members); default: "
                                   "learning_rate alone.", kind="floats", low=0.0, shared=True)
    lr_schedule: str = option("warmup_cosine", "Learning-rate schedule: warmup_cosine (linear "
                              "warm-up over warmup_steps, then cosine decay to 0) or constant.",
                              choices=LR_SCHEDULES)
    warmup_steps: int = option(50, "Linear warm-up steps of warmup_cosine.", low=0)
    weight_decay: float = option(0.01, "AdamW decoupled weight decay.", low=0.0)
    clip_norm: float = option(1.0, "Global gradient-norm clipping threshold (0: no clipping, "
                              "as Zoology).", low=0.0)
    initial_state: str = option("zero", "Training-time initial-state intervention (Buitrago & "
                                "Gu 2025).", choices=interventions.INITIAL_STATES)
    initial_state_std: float = option(1.0, "Standard deviation of the 'noise' intervention.",
                                      low=0.0)
    tbptt: int = option(0, "Process each sequence in K-step segments (0: whole); the "
                        "gradient stops at the state between them unless gradient=rtrl*.", low=0)
    gradient: str = option("bptt", "How gradients cross the tbptt segments: bptt (they stop: "
                           "truncated BPTT), rtrl (exact real-time recurrent learning: the "
                           "cell carries dh/dθ, the gradient is full BPTT's; one layer, "
                           "input_encoding=one_hot, no norm), rtrl_layerwise (any body: each "
                           "layer's recurrence exact, lower layers' influence on the carried "
                           "state cut). rtrl* need tbptt > 0 and a diagonal cell (lru, rg_lru, "
                           "mingru, minlstm).", choices=GRADIENTS)
    init_from: str = option("", "Post-train: start from the final parameters of the finished "
                            "run in this folder (same model and seeds); hashed as that run's "
                            "config hash (`post_trained_from`), not as a path.", hashed=False)
    precision: str = option("float32", "Parameter/activation dtype (bfloat16: fp32 master "
                            "weights, state and optimiser).", choices=PRECISIONS)
    eval_lengths: tuple = option((), "Evaluation lengths (default: train_length x 1..64, plus "
                                 "41..500 for formal-language tasks).", kind="lengths", low=1,
                                 high=MAX_LENGTH)
    eval_size: int = option(256, "Test sequences per evaluation length.", low=1)
    label: str = option("", "The model's name in leaderboards (e.g. 'rg_lru-neg'); default: the "
                        "cell name and the settings that tell it apart.", hashed=False)
    log_every: int = option(100, "Steps between metrics lines.", low=1, hashed=False)
    tensorboard: bool = option(False, "Also write the metrics as TensorBoard event files in "
                               "WORKDIR/tensorboard (metrics.jsonl stays the record; needs "
                               "the tensorboard extra).", hashed=False)
    checkpoint_every: int = option(500, "Steps between checkpoints (also saved on SIGTERM/"
                                   "SIGINT).", low=1, hashed=False)
    keep_checkpoints: int = option(3, "Checkpoints kept in workdir/checkpoints.", low=1,
                                   hashed=False)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _checked(field, getattr(self, field.name)))
        if self.learning_rates:
            object.__setattr__(self, "learning_rate", self.learning_rates[0])

    @property
    def member_learning_rates(self) -> tuple[float, ...]:
        """The learning rate of each member, rate-major: member m trains seed m % seeds at
        `member_learning_rates[m]` = the grid's rate m // seeds."""
        rates = self.learning_rates or (self.learning_rate,)
        return tuple(rate for rate in rates for _ in range(self.seeds))

    @property
    def members(self) -> int:
        """Models trained together in one program: seeds x learning rates."""
        return len(self.member_learning_rates)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values: hparams as objects, lengths as a list."""
        out = dataclasses.asdict(self)
        out["cell_hparams"] = dict(self.cell_hparams)
        out["task_hparams"] = dict(self.task_hparams)
        out["eval_lengths"] = list(self.eval_lengths)
        out["learning_rates"] = list(self.learning_rates)
        return out


FIELDS = {field.name: field for field in dataclasses.fields(Config)}
HASHED_FIELDS = tuple(name for name, f in FIELDS.items() if f.metadata["hashed"])
POST_TRAIN_SHARED = tuple(name for name, f in FIELDS.items() if f.metadata["shared"])

# Presets built into the package (experiments/configs holds the experiments' presets).
PRESETS = {
    # ~20 s on a 2-core CPU: an LSTM learns even_pairs on lengths 1..16, tested up to 64.
    "smoke": dict(cell="lstm", task="even_pairs", width=16, depth=1, train_length=16,
                  min_train_length=1, curriculum="uniform", steps=300, batch_size=16, seeds=2,
                  learning_rate=1e-2, eval_lengths=(8, 16, 32, 64), eval_size=64, log_every=50),
}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list(name: str, value: Any, parse, what: str) -> tuple:
    """A list field's value as a tuple: a list, or a comma-separated string (a flag) whose
    entries `parse` reads; ValueError naming the field otherwise."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, (tuple, list)):
        raise ValueError(f"{name} must be a list of {what}; got {value!r}")
    try:
        return tuple(parse(v) if isinstance(v, str) else v for v in value)
    except ValueError:
        raise ValueError(f"{name} must be {what}; got {list(value)}") from None


def _checked(field: dataclasses.Field, value: Any) -> Any:
    """`value` normalised to the field's stored type; ValueError (one line) when invalid."""
    meta, name = field.metadata, field.name
    kind, low, high = meta["kind"], meta["low"], meta["high"]
    above, choices = meta["above"], meta["choices"]
    if kind == "hparams":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise ValueError(f"{name} must be a JSON object; {e}") from None
        if isinstance(value, (tuple, list)):
            try:
                value = dict(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a JSON object; got {value!r}") from None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"{name} must be a JSON object; got {value!r}")
        return tuple(sorted(value.items()))
    if kind == "lengths":
        value = _list(name, value, int, "integers")
        if not all(_is_int(v) and low <= v <= high for v in value):
            raise ValueError(f"{name} must be integers in [{low}, {high}]; got {list(value)}")
        return value
    if kind == "floats":
        value = _list(name, value, float, "numbers")
        if not all((_is_int(v) or isinstance(v, float)) and math.isfinite(v) and v >= low
                   for v in value) or len(set(value)) != len(value):
            raise ValueError(f"{name} must be distinct finite numbers >= {low}; got "
                             f"{list(value)}")
        return tuple(float(v) for v in value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false; got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string; got {value!r}")
        if choices is not None and value not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
        return value
    if kind == "int":
        if not _is_int(value):
            raise ValueError(f"{name} must be an integer; got {value!r}")
    elif kind == "float":
        if not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {value!r}")
        value = float(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}; got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}; got {value!r}")
    if above is not None and value <= above:
        raise ValueError(f"{name} must be > {above}; got {value!r}")
    return value


DEFAULT_JSON = Config().to_json()  # what a field added later reproduces (see config_hash)


# ----------------------------------------------------------------------- from files and records

def from_fields(fields: dict[str, Any], source: str = "config") -> Config:
    """A Config from plain values; unknown names are an error naming the valid ones."""
    if not isinstance(fields, dict):
        raise ValueError(f"{source}: expected a dict of Config fields; got {type(fields).__name__}")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"{source} sets unknown fields {unknown}; valid: {sorted(FIELDS)}")
    try:
        return Config(**fields)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def from_json(config_json: dict[str, Any]) -> Config:
    """The Config a run recorded (`config.json`, `result.json["config"]`): fields it predates
    take their defaults, which reproduce the behaviour from before they existed; keys that are
    not Config fields (`post_trained_from`) are ignored."""
    return from_fields({k: v for k, v in config_json.items() if k in FIELDS}, "stored config")


def hashed_json(config_json: dict[str, Any]) -> dict[str, Any]:
    """The fields of a recorded config that define what the run computes: its `HASHED_FIELDS`
    (read through `from_json`, so a field added later hashes at its default) plus
    `post_trained_from` when present."""
    full = from_json(config_json).to_json()
    out = {name: full[name] for name in HASHED_FIELDS}
    if "post_trained_from" in config_json:
        out["post_trained_from"] = config_json["post_trained_from"]
    return out


def config_hash(config_json: dict[str, Any]) -> str:
    """The run's `config_hash`: 12 hex characters of sha256 over the entries of
    `hashed_json(config_json)` that differ from the defaults, so that a field added later, at
    its default (the behaviour from before it existed), leaves every existing hash unchanged."""
    defaults = DEFAULT_JSON
    return results.config_hash({name: value for name, value in hashed_json(config_json).items()
                                if name not in defaults or value != defaults[name]})


def load_config_file(spec: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, namespace) of `PATH.py[:ARG]`: its `get_config()` or `get_config(ARG)` and the
    file's globals (a sweep reads `get_sweep` from them).

    The file is plain Python (big_vision's and ml_collections' convention) returning a dict of
    Config fields. A missing file, a file that fails to run, no `get_config`, a `get_config`
    that raises or returns unknown fields: ValueError, one line.
    """
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise ValueError(f"--config: no such file {path!r} (expected PATH.py[:ARG])")
    try:
        namespace = runpy.run_path(path)
    except Exception as e:  # noqa: BLE001 -- a user's file: any error is reported in one line
        raise ValueError(f"--config: {path} failed to run: {type(e).__name__}: {e}") from None
    if "get_config" not in namespace:
        raise ValueError(f"--config: {path} defines no get_config()")
    try:
        fields = namespace["get_config"](arg) if arg else namespace["get_config"]()
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"--config: {path}: get_config({arg!r}) raised {type(e).__name__}: "
                         f"{e}") from None
    if not isinstance(fields, dict):
        raise ValueError(f"--config: {path}: get_config() must return a dict of Config fields")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"--config: {path} sets unknown fields {unknown}; valid: "
                         f"{sorted(FIELDS)}")
    return dict(fields), namespace


# ---------------------------------------------------------------------------------- flags

def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """One absl flag per Config field, with its help, bounds and choices; plus the run's own
    flags (--workdir, --preset, --config, --distributed and its addresses, --overwrite)."""
    define = dict(flag_values=flag_values)
    flags.DEFINE_string("workdir", None, "Run folder (config.json, metrics.jsonl, result.json).",
                        **define)
    flags.DEFINE_enum("preset", None, sorted(PRESETS), "Start from a preset; flags override it.",
                      **define)
    flags.DEFINE_string("config", None, "Start from a config file PATH.py[:ARG] whose "
                        "get_config(ARG) returns Config fields; flags override it.", **define)
    flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first "
                      "(multi-process: one process per host or per accelerator; on TPU pods, "
                      "Slurm and Open MPI it finds the others itself).", **define)
    flags.DEFINE_string("coordinator_address", None, "--distributed elsewhere: HOST:PORT of "
                        "process 0 (with --num_processes and --process_id).", **define)
    flags.DEFINE_integer("num_processes", None, "--distributed: how many processes take part.",
                         lower_bound=1, **define)
    flags.DEFINE_integer("process_id", None, "--distributed: this process's index, 0 .. "
                         "num_processes - 1.", lower_bound=0, **define)
    flags.DEFINE_bool("overwrite", False, "Delete a run of another configuration found in "
                      "--workdir and start afresh (without it, such a folder is refused).",
                      **define)
    for name, field in FIELDS.items():
        meta = field.metadata
        kind, help_text, bound = meta["kind"], meta["help"], meta["low"]
        if kind == "int":
            flags.DEFINE_integer(name, field.default, help_text, lower_bound=bound,
                                 upper_bound=meta["high"], **define)
        elif kind == "float":
            flags.DEFINE_float(name, field.default, help_text,
                               lower_bound=bound if bound is not None else meta["above"],
                               **define)
        elif kind == "bool":
            flags.DEFINE_bool(name, field.default, help_text, **define)
        elif kind == "str" and meta["choices"]:
            flags.DEFINE_enum(name, field.default, meta["choices"], help_text, **define)
        elif kind == "str":
            flags.DEFINE_string(name, field.default, help_text, **define)
        elif kind == "hparams":
            flags.DEFINE_string(name, "{}", help_text, **define)
        else:  # lengths, floats
            flags.DEFINE_list(name, [], help_text, **define)


def from_flags(values: flags.FlagValues = flags.FLAGS) -> Config:
    """Config defaults < --preset or --config < flags given on the command line."""
    if values.preset and values.config:
        raise ValueError("give --preset or --config, not both")
    fields = dict(PRESETS[values.preset]) if values.preset else {}
    if values.config:
        fields = load_config_file(values.config)[0]
    for name in FIELDS:
        if values[name].present:
            fields[name] = values[name].value
    return from_fields(fields, f"--config={values.config}" if values.config else "config")


# ---------------------------------------------------------------------------------- build

def build(config: Config):
    """(cell, task, model) for `config`, checked before anything compiles. Imports
    `config.user_module` first (and the installed `seqbench.plugins`), so its names resolve."""
    plugins.load_entry_points()
    if config.user_module:
        plugins.load_user_module(config.user_module)
    task = tasks.get(config.task, **dict(config.task_hparams))
    low = config.train_length if config.curriculum == "fixed" else config.min_train_length
    if low < task.min_length or config.train_length < low:
        raise ValueError(
            f"training lengths [{low}, {config.train_length}] must lie within "
            f"[task min_length={task.min_length}, train_length]"
        )
    for length in (config.train_length, *config.eval_lengths):
        task.check_length(length)
    cell = cells.get(config.cell, d_hidden=config.width, **dict(config.cell_hparams))
    if not cell.recurrent:  # a state sized for the training sequences (evaluation: the longest)
        cell = cell.sized_for(task.seq_len(config.train_length))
    if not cell.recurrent and (config.initial_state != "zero" or config.tbptt):
        raise ValueError(f"initial_state={config.initial_state!r} and tbptt need a recurrent "
                         f"state; {config.cell!r} has none: use initial_state='zero', tbptt=0")
    check_gradient(config, cell)
    return cell, task, model_for(cell, task, config)


def check_gradient(config: Config, cell) -> None:
    """ValueError unless `config.gradient` can train `cell` in this model (`cells.rtrl`)."""
    if config.gradient == "bptt":
        return
    if not config.tbptt:
        raise ValueError(f"gradient={config.gradient!r} carries the gradient across tbptt "
                         "segments; set tbptt=K > 0 (without segments it is plain BPTT)")
    rtrl.with_rtrl(cell)  # raises for a cell without a diagonal form, naming those with one
    below = [f"{name}={value!r}" for name, value, exact in (
        ("depth", config.depth, config.depth == 1),
        ("input_encoding", config.input_encoding, config.input_encoding == "one_hot"),
        ("norm", config.norm, not config.norm)) if not exact]
    if config.gradient == "rtrl" and below:
        raise ValueError(
            f"gradient='rtrl' is exact only for one recurrent layer with nothing trainable "
            f"below it (depth=1, input_encoding='one_hot', norm=False); got {', '.join(below)}. "
            "Use gradient='rtrl_layerwise' (each layer's own recurrence exact, the influence of "
            "what lies below on the carried state cut at segment boundaries) or 'bptt'")


def model_for(cell, task, config: Config) -> models.Model:
    """The model stacking `cell` with the input and output layers `task` needs."""
    return models.build(cell, input_dim=task.input_vocab,
                        output_dim=max(task.output_vocab, 1) * task.num_heads, depth=config.depth,
                        real_inputs=task.real_inputs, mlp_expand=config.mlp_expand,
                        norm=config.norm, residual=config.residual,
                        input_encoding=config.input_encoding)
