"""Memory over time: N-parity, N-DMS, flip-flop, noisy and fuzzy recall, set disjointness.

Every generator works on a whole bucket: `lengths` (B,) is traced, `max_length` is static, and
each row's steps at or after its own length are padding (inputs 0, targets 0, mask False).
Shape letters: see `kernels/typing.py`; the hyperparameter n of N-parity and N-DMS (the tasks'
names in their paper) is the window or lag, not a shape.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqbench.tasks.base import Batch, Task, positions

# ---------------------------------------------------------------------------------------------
# shared helpers


def _shift_right(x: jax.Array, k: int) -> jax.Array:
    """x[:, t - k] at step t (zeros for t < k); x: (B, T)."""
    return jnp.pad(x, ((0, 0), (k, 0)))[:, : x.shape[1]]


def _take(x: jax.Array, idx: jax.Array) -> jax.Array:
    """Row-wise gather x[b, idx[b, t]] with idx clipped into range; x: (B, n), idx: (B, T)."""
    return jnp.take_along_axis(x, jnp.clip(idx, 0, x.shape[1] - 1), axis=1)


def _first_index(ids: jax.Array) -> jax.Array:
    """(B, n) int32 for ids (B, n): the first p' with ids[b, p'] == ids[b, p] (p itself on a
    first occurrence)."""
    rows, slot = jnp.arange(ids.shape[0])[:, None], jnp.arange(ids.shape[1])
    order = jnp.argsort(ids, axis=1, stable=True)
    ranked = ids[rows, order]
    starts = jnp.concatenate(
        [jnp.ones_like(ranked[:, :1], bool), ranked[:, 1:] != ranked[:, :-1]], axis=1
    )
    group_start = jax.lax.cummax(jnp.where(starts, slot, 0), axis=1)
    return jnp.zeros_like(order).at[rows, order].set(order[rows, group_start])


def _distinct_tokens(u: jax.Array, n: int) -> jax.Array:
    """(..., k) int32: k distinct tokens of [0, n) in uniformly random order, from uniforms u.

    Token i is uniform over the n - i tokens not yet drawn: its rank r among them is shifted
    past each earlier draw p (in increasing order) with r >= p.
    """
    drawn = []
    for i in range(u.shape[-1]):
        rank = (u[..., i] * (n - i)).astype(jnp.int32)
        for earlier in jnp.unstack(jnp.sort(jnp.stack(drawn, -1), -1), axis=-1) if drawn else ():
            rank = rank + (rank >= earlier)
        drawn.append(rank)
    return jnp.stack(drawn, -1)


def _uniform_index(key: jax.Array, counts: jax.Array) -> jax.Array:
    """(B,) int32 uniform in [0, counts[b]) for traced counts >= 1."""
    u = jax.random.uniform(key, counts.shape)
    return jnp.minimum((u * counts).astype(jnp.int32), counts - 1)


# ---------------------------------------------------------------------------------------------
# N-parity and N-DMS


def _lag_heads(task: str, n: int, heads: Any) -> tuple[int, ...] | None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{task}: n must be an int >= 1 (the lag in steps), got {n!r}")
    if heads is None:
        return None
    if heads == "all":
        return tuple(range(1, n + 1))
    lags = tuple(int(h) for h in heads) if isinstance(heads, (tuple, list)) else ()
    if not lags or len(set(lags)) != len(lags) or not all(1 <= h <= n for h in lags):
        raise ValueError(
            f"{task}: heads must be None, 'all' or distinct lags in 1..n={n}, got {heads!r}"
        )
    return lags


def _lag_task(name: str, n: int, heads: Any, first_scored: int, target_fn) -> Task:
    """A binary-stream task whose target at t compares the inputs in a window of `lag` steps.

    `target_fn(bits, lag) -> (B, T) int32`; the head for `lag` is scored from step
    `lag - 1 + first_scored` on. Multi-head tasks stack heads on a trailing axis H.
    """
    lags = _lag_heads(name, n, heads)
    head_lags = lags or (n,)
    longest = max(head_lags)

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        pos = positions(lengths.shape[0], max_length)
        valid = pos < lengths[:, None]
        bits = jax.random.bernoulli(key, 0.5, pos.shape).astype(jnp.int32) * valid
        targets = jnp.stack([target_fn(bits, lag) for lag in head_lags], axis=-1)
        first = jnp.asarray([lag - 1 + first_scored for lag in head_lags], jnp.int32)
        mask = valid[..., None] & (pos[..., None] >= first)
        targets = jnp.where(mask, targets, 0)
        if lags is None:
            targets, mask = targets[..., 0], mask[..., 0]
        return Batch(bits, targets, mask)

    def difficulty(length: int) -> dict[str, Any]:
        return {
            "lags": list(head_lags),
            "scored_steps_per_head": [max(0, length - lag + 1 - first_scored) for lag in head_lags],
        }

    return Task(
        name=name,
        group="memory",
        generate=generate,
        seq_len=lambda length: length,
        input_vocab=2,
        output_vocab=2,
        min_length=longest + first_scored,
        chance=0.5,
        difficulty=difficulty,
        hparams={"n": int(n), "heads": heads},
        num_heads=1 if lags is None else len(lags),
    )


def _parity_target(bits: jax.Array, lag: int) -> jax.Array:
    prefix = jnp.cumsum(bits, axis=1)
    return (prefix - _shift_right(prefix, lag)) % 2


def _dms_target(bits: jax.Array, lag: int) -> jax.Array:
    return (bits == _shift_right(bits, lag)).astype(jnp.int32)


def make_n_parity(*, n: int = 4, heads: Any = None) -> Task:
    """N-parity: at step t output x_{t-n+1} xor ... xor x_t, the parity of the last n bits.

    Inputs are i.i.d. fair bits (tokens 0/1); the target is scored at every t >= n-1 (the first
    n-1 steps have no full window). `heads=None` asks for one n (targets (B, T)); `heads="all"`
    asks for every n' in 1..n at once and `heads=(2, 5)` for the listed n' (the paper's
    multi-head setting): targets and mask are then (B, T, H), head h scored from t >= n'_h - 1,
    and `Task.num_heads = H` marks the extra axis.

    Example, n=2:
        inputs   1 0 0 1 1
        targets  0 1 0 1 0
        mask     F T T T T
    Chance 0.5 (every window parity is a fair coin). Difficulty does not grow with length: n is
    the memory asked for; longer sequences test that the mechanism stays stable.
    Paper: "Emergent mechanisms for long timescales depend on training curriculum and affect
    performance in memory tasks" (Khajehabdollahi et al., ICLR 2024).
    """
    return _lag_task("n_parity", n, heads, 0, _parity_target)


def make_n_dms(*, n: int = 4, heads: Any = None) -> Task:
    """N-DMS (delayed match to sample): at step t output 1 if x_{t-n} == x_t, else 0.

    Inputs are i.i.d. fair bits (tokens 0/1); scored at every t >= n. `heads` as in n_parity:
    None (targets (B, T)), "all" (every n' in 1..n) or a tuple of lags (targets and mask
    (B, T, H), head h scored from t >= n'_h, `Task.num_heads = H`).

    Example, n=2:
        inputs   1 0 1 0 0
        targets  0 0 1 1 0
        mask     F F T T T
    Chance 0.5. Difficulty does not grow with length (the delay n is fixed).
    Paper: "Emergent mechanisms for long timescales depend on training curriculum and affect
    performance in memory tasks" (Khajehabdollahi et al., ICLR 2024).
    """
    return _lag_task("n_dms", n, heads, 1, _dms_target)


# ---------------------------------------------------------------------------------------------
# flip-flop

FF_WRITE, FF_READ, FF_IGNORE = 2, 3, 4  # instruction tokens; data tokens are the bits 0 and 1


def make_flip_flop(
    *, p_write: float = 0.1, p_read: float = 0.1, p_ignore: float = 0.8
) -> Task:
    """Flip-flop language: instruction/bit pairs; `r` must output the last bit written by `w`.

    The sequence is pairs (instruction, bit): instructions w=2, r=3, i=4 at even steps, bits
    0/1 at odd steps. Instructions are i.i.d. with probabilities (p_write, p_read, p_ignore),
    except that the first is always w and the row's last instruction is always r. Bits after w
    and i are fair coins; the bit after r repeats the memory (the last written bit), as in the
    paper's language. The target sits on each r token (its next token is the bit to predict),
    so a causal model answers before it sees the bit; only r positions are scored. For an odd
    length the row ends on its final r. Defaults are the paper's FFL(p_i = 0.8).

    Example (w=2, r=3, i=4), length 9: (w 1) (r 1) (i 0) (r 1) (r):
        inputs   2 1 3 1 4 0 3 1 3
        targets  0 0 1 0 0 0 1 0 1
        mask     F F T F F F T F T
    Chance 0.5 (written bits are fair coins). Difficulty at length L: about L/2 * p_read reads,
    each about 1/p_write pairs after its write. The gap between write and read is unbounded and
    grows in distribution with length; sparse sequences (the paper's p_ignore = 0.98) make the
    gaps long, dense ones (p_ignore = 0.1) short.
    Paper: Liu, Ash, Goel, Krishnamurthy, Zhang 2023, "Exposing Attention Glitches with
    Flip-Flop Language Modeling".
    """
    probs = (p_write, p_read, p_ignore)
    if min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-6 or p_write <= 0:
        raise ValueError(
            "flip_flop: p_write, p_read, p_ignore must be >= 0, sum to 1 and p_write > 0; "
            f"got {probs}"
        )

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        batch, pairs = lengths.shape[0], (max_length + 1) // 2
        k_instr, k_bits = jax.random.split(key)
        pair = positions(batch, pairs)
        u = jax.random.uniform(k_instr, (batch, pairs))
        instr = jnp.where(u < p_write + p_read, FF_READ, FF_IGNORE)
        instr = jnp.where(u < p_write, FF_WRITE, instr)
        last_pair = (lengths[:, None] - 1) // 2
        instr = jnp.where(pair == 0, FF_WRITE, jnp.where(pair == last_pair, FF_READ, instr))
        bits = jax.random.bernoulli(k_bits, 0.5, (batch, pairs)).astype(jnp.int32)
        last_write = jax.lax.cummax(jnp.where(instr == FF_WRITE, pair, 0), axis=1)
        memory = jnp.take_along_axis(bits, last_write, axis=1)
        is_read = instr == FF_READ
        data = jnp.where(is_read, memory, bits)
        interleave = lambda a, b: jnp.stack([a, b], -1).reshape(batch, 2 * pairs)[:, :max_length]
        valid = positions(batch, max_length) < lengths[:, None]
        mask = interleave(is_read, jnp.zeros_like(is_read)) & valid
        inputs = jnp.where(valid, interleave(instr, data), 0)
        targets = jnp.where(mask, interleave(memory, jnp.zeros_like(memory)), 0)
        return Batch(inputs, targets, mask)

    def difficulty(length: int) -> dict[str, Any]:
        pairs = (length + 1) // 2
        return {
            "pairs": pairs,
            "expected_reads": 1 + (pairs - 2) * p_read,
            "mean_write_gap_pairs": 1.0 / p_write,
        }

    return Task(
        name="flip_flop",
        group="memory",
        generate=generate,
        seq_len=lambda length: length,
        input_vocab=5,
        output_vocab=2,
        min_length=3,
        chance=0.5,
        difficulty=difficulty,
        hparams={"p_write": p_write, "p_read": p_read, "p_ignore": p_ignore},
    )


# ---------------------------------------------------------------------------------------------
# MAD noisy and fuzzy in-context recall


def _recall_generate(
    key: jax.Array,
    lengths: jax.Array,
    max_length: int,
    *,
    num_keys: int,
    num_values: int,
    key_sizes: tuple[int, int],
    max_value_size: int,
    frac_noise: float,
    noise_tokens: tuple[int, int],
    pad_token: int | None,
) -> Batch:
    """MAD recall rows: filler, then key-value segments, then a probe repeating an earlier key.

    Each row of L inputs is the first L tokens of a stream of L+1 tokens; the target at step t
    is the stream's token t+1, scored when it is a value token of a key seen before. A segment
    is a key (k distinct key tokens, k uniform in key_sizes) followed by its value (the row's
    fixed value for that key: v distinct value tokens, v uniform in 1..max_value_size), or, with
    probability frac_noise, as many noise tokens. The body holds the segments that fit in
    L+1 - (k_max+v_max) tokens; one of them (uniform) is forced to be a key-value pair, and
    the probe repeats it so that the stream ends exactly on the probe's last value token. The
    leftover tokens go in front as filler (pad_token, or noise tokens when pad_token is None).
    """
    batch, steps = lengths.shape[0], max_length + 1
    slots = steps // 2  # segments have >= 2 tokens
    k_min, k_max = key_sizes
    k_draw, k_source, k_noise = jax.random.split(key, 3)
    rows, slot = jnp.arange(batch)[:, None], positions(batch, slots)

    # one draw per slot: key tokens, value tokens, key size, value size, noise
    u = jax.random.uniform(k_draw, (batch, slots, k_max + max_value_size + 3))
    key_tok = _distinct_tokens(u[..., :k_max], num_keys)
    key_size = k_min + (u[..., -3] * (k_max - k_min + 1)).astype(jnp.int32)
    digit = jnp.arange(k_max) < key_size[..., None]
    key_id = jnp.sum(jnp.where(digit, key_tok + 1, 0) * (num_keys + 1) ** jnp.arange(k_max), -1)
    # a key's value is the one drawn at the key's first slot, so it is fixed within the row
    first = _first_index(key_id)
    value_tok = num_keys + _distinct_tokens(u[..., k_max:-3], num_values)[rows, first]
    value_size = 1 + (u[..., -2] * max_value_size).astype(jnp.int32)[rows, first]
    size = key_size + value_size

    budget = lengths[:, None] + 1 - (k_max + max_value_size)
    num_body = jnp.sum(jnp.cumsum(size, axis=1) <= budget, axis=1)
    source = _uniform_index(k_source, num_body)[:, None]
    noise = (u[..., -1] < frac_noise) & (slot != source)

    # the probe takes slot num_body and copies the forced pair `source`
    is_probe = slot == num_body[:, None]

    def copy(x: jax.Array) -> jax.Array:
        probe = is_probe.reshape(is_probe.shape + (1,) * (x.ndim - 2))
        return jnp.where(probe, x[rows, source], x)

    key_size, key_tok, key_id, value_size, value_tok, size = map(
        copy, (key_size, key_tok, key_id, value_size, value_tok, size)
    )
    noise = noise & ~is_probe

    ends = jnp.cumsum(size, axis=1)
    used = jnp.take_along_axis(ends, num_body[:, None], axis=1)  # body + probe tokens
    pad = lengths[:, None] + 1 - used

    step = positions(batch, steps)
    offset_in_body = step - pad
    seg = jax.vmap(lambda e, o: jnp.searchsorted(e, o, side="right"))(ends, offset_in_body)
    seg = jnp.minimum(seg, slots - 1).astype(jnp.int32)
    within = offset_in_body - (ends - size)[rows, seg]
    k_len = key_size[rows, seg]
    part = jnp.concatenate([key_tok, value_tok], axis=-1)[rows, seg]  # (B, steps, k_max + v_max)
    column = jnp.where(within < k_len, within, k_max + within - k_len)
    column = jnp.clip(column, 0, part.shape[-1] - 1)[..., None]
    token = jnp.take_along_axis(part, column, axis=-1)[..., 0]

    lo, hi = noise_tokens
    noise_tok = jax.random.randint(k_noise, (batch, steps), lo, hi) if hi > lo else 0
    filler = noise_tok if pad_token is None else pad_token
    in_filler = step < pad
    seg_noise = noise[rows, seg]
    stream = jnp.where(in_filler, filler, jnp.where(seg_noise, noise_tok, token))

    unique_id = jnp.where(noise, -1 - slot, key_id)
    repeated = (_first_index(unique_id) != slot) & ~noise
    scored = ~in_filler & ~seg_noise & (within >= k_len) & repeated[rows, seg]

    valid = positions(batch, max_length) < lengths[:, None]
    mask = scored[:, 1:] & valid
    inputs = jnp.where(valid, stream[:, :-1], 0)
    targets = jnp.where(mask, stream[:, 1:], 0)
    return Batch(inputs, targets, mask)


def _recall_task(
    name: str, vocab_size: int, num_keys: int, num_values: int, hparams: dict, **spec: Any
) -> Task:
    k_min, k_max = spec["key_sizes"]
    v_max = spec["max_value_size"]
    frac_noise = spec["frac_noise"]

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        return _recall_generate(
            key, lengths, max_length, num_keys=num_keys, num_values=num_values, **spec
        )

    def difficulty(length: int) -> dict[str, Any]:
        mean_segment = (k_min + k_max) / 2 + (1 + v_max) / 2
        return {
            "key_tokens": num_keys,
            "value_tokens": num_values,
            "key_sizes": [k_min, k_max],
            "max_value_size": v_max,
            "frac_noise": frac_noise,
            "expected_segments": (length + 1) / mean_segment,
        }

    return Task(
        name=name,
        group="memory",
        generate=generate,
        seq_len=lambda length: length,
        input_vocab=vocab_size,
        output_vocab=vocab_size,
        min_length=2 * (k_max + v_max) - 1,
        chance=1.0 / num_values,
        difficulty=difficulty,
        hparams=hparams,
    )


def make_noisy_recall(
    *, vocab_size: int = 32, noise_vocab_size: int = 16, frac_noise: float = 0.2
) -> Task:
    """MAD noisy in-context recall: key-value pairs with noise pairs in between; recall values.

    Tokens: keys 0..k-1 and values k..2k-1 with k = (vocab_size - noise_vocab_size) // 2, noise
    tokens vocab_size - noise_vocab_size .. vocab_size - 1. Each row fixes a random value per
    key (values may repeat across keys). The row is a stream of 2-token segments: with
    probability frac_noise two noise tokens, else a uniform key and its value. Following MAD's
    multi-query setting, the target on a key token is its value (next-token prediction),
    scored whenever that key appeared in an earlier pair; the row ends with a probe pair
    repeating an earlier key, so every row has a scored step (its value is the token after the
    row, seen only as a target). A row of even length starts with one noise token.

    Example (vocab 8, noise 4: keys 0-1, values 2-3, noise 4-7), length 9; the pair (7 6) is
    noise, key 0 -> 3 and key 1 -> 2, and the probe's value 2 follows the row:
        inputs   0 3 7 6 1 2 0 3 1
        targets  0 0 0 0 0 0 3 0 2
        mask     F F F F F F T F T
    Chance 1/k (the value of a repeated key is uniform over the k value tokens).
    Difficulty: a fixed key vocabulary, so longer rows hold more pairs and repeats while the
    memory needed stays k key-value bindings; raise vocab_size (MAD: 48, 80, 144) or
    frac_noise (MAD: 0.4-0.8) to make it harder.
    Paper: Poli et al. 2024, "Mechanistic Design and Scaling of Hybrid Architectures" (MAD;
    baseline vocab 32, noise vocab 16, frac_noise 0.2).
    """
    num_kv = vocab_size - noise_vocab_size
    if noise_vocab_size < 1 or num_kv < 2:
        raise ValueError(
            "noisy_recall: needs noise_vocab_size >= 1 and vocab_size - noise_vocab_size >= 2 "
            f"(keys and values); got vocab_size={vocab_size}, noise_vocab_size={noise_vocab_size}"
        )
    if not 0.0 <= frac_noise < 1.0:
        raise ValueError(f"noisy_recall: frac_noise must be in [0, 1), got {frac_noise}")
    num_keys = num_kv // 2
    return _recall_task(
        "noisy_recall",
        vocab_size,
        num_keys,
        num_keys,
        {"vocab_size": vocab_size, "noise_vocab_size": noise_vocab_size, "frac_noise": frac_noise},
        key_sizes=(1, 1),
        max_value_size=1,
        frac_noise=frac_noise,
        noise_tokens=(num_kv, vocab_size),
        pad_token=None,
    )


def make_fuzzy_recall(
    *,
    vocab_size: int = 16,
    k_motif_size: int = 3,
    v_motif_size: int = 3,
    max_size_keys: bool = False,
) -> Task:
    """MAD fuzzy in-context recall: keys and values are runs of several tokens.

    Tokens: keys 0..k-1 with k = (vocab_size - 1) // 2, values k..vocab_size-2, pad
    vocab_size - 1. A key is 1..k_motif_size distinct key tokens (always k_motif_size with
    `max_size_keys=True`, MAD's test-time setting); each row maps every key (as a tuple) to a
    fixed value of 1..v_motif_size distinct value tokens. Segments key+value follow each other;
    the target on the step before each value token is that token, scored when the key occurred
    earlier in the row (MAD's multi-query scoring of every value token). The row ends with a
    probe repeating an earlier pair, ending on its last value token (the token after the row);
    pad tokens fill the front so that the probe ends exactly there.

    Example (vocab 16: keys 0-6, values 7-14, pad 15), k_motif_size = v_motif_size = 2,
    length 12: segments (4)->(9 8), (0 1)->(11), (4)->(9 8), then the probe (4)->(9 [8]):
        inputs   15 4 9 8 0 1 11 4 9 8 4 9
        targets   0 0 0 0 0 0  0 9 8 0 9 8
        mask      F F F F F F  F T T F T T
    Chance 1/(vocab_size - 1 - k) (a value token is uniform over the value vocabulary).
    Difficulty: fixed vocabulary, so the key space and memory needed are bounded; raise
    vocab_size (MAD: 32, 64, 128) or the motif sizes to make it harder.
    Paper: Poli et al. 2024, "Mechanistic Design and Scaling of Hybrid Architectures" (MAD;
    baseline vocab 16, k_motif_size = v_motif_size = 3).
    """
    num_keys = (vocab_size - 1) // 2
    num_values = vocab_size - 1 - num_keys
    if k_motif_size < 1 or v_motif_size < 1:
        raise ValueError(
            f"fuzzy_recall: motif sizes must be >= 1, got k={k_motif_size}, v={v_motif_size}"
        )
    if num_keys < k_motif_size or num_values < v_motif_size:
        needed = max(2 * k_motif_size + 1, 2 * v_motif_size)
        raise ValueError(
            f"fuzzy_recall: vocab_size={vocab_size} gives {num_keys} key and {num_values} value "
            f"tokens, but keys need k_motif_size={k_motif_size} and values v_motif_size="
            f"{v_motif_size} distinct tokens: needs vocab_size >= {needed}"
        )
    if (num_keys + 1) ** k_motif_size >= 2**31:
        raise ValueError(
            f"fuzzy_recall: (key tokens + 1) ** k_motif_size must fit in int32 for key ids; "
            f"got {num_keys} key tokens, k_motif_size={k_motif_size}"
        )
    return _recall_task(
        "fuzzy_recall",
        vocab_size,
        num_keys,
        num_values,
        {
            "vocab_size": vocab_size,
            "k_motif_size": k_motif_size,
            "v_motif_size": v_motif_size,
            "max_size_keys": max_size_keys,
        },
        key_sizes=(k_motif_size if max_size_keys else 1, k_motif_size),
        max_value_size=v_motif_size,
        frac_noise=0.0,
        noise_tokens=(0, 0),
        pad_token=vocab_size - 1,
    )


# ---------------------------------------------------------------------------------------------
# set disjointness


def make_set_disjointness(
    *, vocab_size: int = 128, short_size: int = 8, short_first: bool = True
) -> Task:
    """Set disjointness: two sets split by a delimiter; output at the end whether they intersect.

    Tokens: elements 0..vocab_size-1, delimiter vocab_size. The short set holds `short_size`
    distinct elements; the long set fills the rest of the row (length L: L - 1 - short_size
    elements) and is drawn uniformly, with replacement, from the elements outside the short set
    (repeats do not change the set, and let any length work with a finite vocabulary). With
    probability 1/2 exactly one long-set position is replaced by an element of the short set,
    so labels are balanced. `short_first` puts the short set before the delimiter (a recurrent
    model then needs to hold only short_size elements) or after it (it must hold the long set).
    The target 1 = "intersect", 0 = "disjoint", scored only at the row's last step.

    Example (vocab 8, delimiter 8), short_size 2, short first: {3, 7} and {2, 6, 5, 0} are
    disjoint (length 8); {5, 4} and {4} intersect (length 4):
        inputs   3 7 8 2 6 6 5 0        5 4 8 4
        targets  0 0 0 0 0 0 0 0        0 0 0 1
        mask     F F F F F F F T        F F F T
    Chance 0.5. Difficulty: with short_first the memory asked for is short_size at every
    length; with long first it grows with length as min(L - 1 - short_size, vocab_size -
    short_size) distinct elements.
    Paper: Arora et al. 2024, "Just read twice: closing the recall gap for recurrent language
    models" (set order decides the memory a recurrent model needs).
    """
    if short_size < 1 or vocab_size <= short_size:
        raise ValueError(
            f"set_disjointness: needs 1 <= short_size < vocab_size so the long set has elements "
            f"outside the short set; got short_size={short_size}, vocab_size={vocab_size}"
        )
    delimiter = vocab_size

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        batch = lengths.shape[0]
        k_perm, k_long, k_row = jax.random.split(key, 3)
        perm = jnp.argsort(jax.random.uniform(k_perm, (batch, vocab_size)), axis=1)
        short = perm[:, :short_size].astype(jnp.int32)
        draw = jax.random.randint(k_long, (batch, max_length), short_size, vocab_size)
        long = jnp.take_along_axis(perm, draw, axis=1).astype(jnp.int32)
        long_size = lengths - 1 - short_size
        u_hit, u_at, u_which = jax.random.uniform(k_row, (3, batch))
        intersect = u_hit < 0.5
        hit_at = jnp.minimum((u_at * long_size).astype(jnp.int32), long_size - 1)
        shared = short[jnp.arange(batch), (u_which * short_size).astype(jnp.int32)][:, None]
        pos = positions(batch, max_length)
        long = jnp.where(intersect[:, None] & (pos == hit_at[:, None]), shared, long)

        first, second = (short, long) if short_first else (long, short)
        split = jnp.full((batch, 1), short_size) if short_first else long_size[:, None]
        after = jnp.where(pos == split, delimiter, _take(second, pos - split - 1))
        inputs = jnp.where(pos < split, _take(first, pos), after)
        valid = pos < lengths[:, None]
        mask = pos == lengths[:, None] - 1
        inputs = jnp.where(valid, inputs, 0)
        targets = jnp.where(mask, intersect[:, None].astype(jnp.int32), 0)
        return Batch(inputs, targets, mask)

    def difficulty(length: int) -> dict[str, Any]:
        long_size = length - 1 - short_size
        return {
            "short_set": short_size,
            "long_set": long_size,
            "first": "short" if short_first else "long",
            "elements_to_hold": short_size
            if short_first
            else min(long_size, vocab_size - short_size),
        }

    return Task(
        name="set_disjointness",
        group="memory",
        generate=generate,
        seq_len=lambda length: length,
        input_vocab=vocab_size + 1,
        output_vocab=2,
        min_length=short_size + 2,
        chance=0.5,
        difficulty=difficulty,
        hparams={"vocab_size": vocab_size, "short_size": short_size, "short_first": short_first},
    )


TASKS = {
    "n_parity": make_n_parity,
    "n_dms": make_n_dms,
    "flip_flop": make_flip_flop,
    "noisy_recall": make_noisy_recall,
    "fuzzy_recall": make_fuzzy_recall,
    "set_disjointness": make_set_disjointness,
}
