"""Memory tasks: copy, selective copy, MQAR, induction heads, the adding problem, passkey retrieval.

Token layout of the copying-style tasks (copy, selective_copy, induction_heads; passkey adds its own
tokens on top): `BLANK = 0` is the blank / noise / "computation step" token (and the padding
value), `DELIM = 1` is the delimiter (copy tasks), the trigger (induction heads) or the query
(passkey), and content tokens are `2 .. vocab_size-1`. Targets reuse the input ids
(`output_vocab = input_vocab`), so copying a token means emitting its own id. MQAR follows
Zoology's layout instead (no special tokens; see `make_mqar`).

Every generator builds a whole bucket at once: each row's input length is a traced int32, all
positions come from `jnp.arange` arithmetic, and random choices "k distinct items out of the first
n" use Gumbel top-k over a masked row, so one compilation serves every length in the bucket.
Each generator makes ONE `jax.random.uniform` draw and derives every random quantity from its
columns (integers by `floor(u * n)`, Gumbel noise by `-log(-log u)`): on CPU every separate
PRNG call adds about half a second of compile time.

Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from seqbench.tasks.base import Batch, Task, positions

BLANK = 0  # blank / noise / answer step; also the padding value
DELIM = 1  # delimiter, trigger or query marker
FIRST_CONTENT = 2  # content tokens are FIRST_CONTENT .. vocab_size-1


# --- shared pieces ------------------------------------------------------------------------------


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _uniform_blocks(key: jax.Array, batch: int, widths: tuple[int, ...]) -> list[jax.Array]:
    """Independent U[0, 1) float32 blocks of shapes (batch, w) for w in `widths`, from one draw."""
    u = jax.random.uniform(key, (batch, sum(widths)), jnp.float32)
    return jnp.split(u, np.cumsum(widths)[:-1].tolist(), axis=1)


def _randint(u: jax.Array, low, high) -> jax.Array:
    """Integers uniform on [low, high) from uniforms `u` (bounds may be traced arrays).

    Exact for power-of-two ranges; otherwise off by at most (high-low)/2^23 relative."""
    return jnp.clip(low + jnp.floor(u * (high - low)).astype(jnp.int32), low, high - 1)


def _gumbel_top_k(u: jax.Array, logits: jax.Array, k: int) -> jax.Array:
    """k distinct indices per row of `logits` (B, n), drawn one after another, each with
    probability proportional to exp(logit) among those not yet drawn (successive sampling without
    replacement, as `np.random.choice(replace=False, p=...)`); -inf logits are never drawn while
    k finite ones remain. `u`: uniforms shaped like `logits`. Returns int32 (B, k) in drawing
    order."""
    gumbel = -jnp.log(-jnp.log(u + 2.0**-24))  # u + 2^-24 lies in (0, 1): both logs finite
    return jax.lax.top_k(logits + gumbel, k)[1].astype(jnp.int32)


def _pad_time(x: jax.Array, steps: int) -> jax.Array:
    """Zero-pad the time axis (axis 1) of `x` to `steps`."""
    return jnp.pad(x, ((0, 0), (0, steps - x.shape[1])))


def _recall_phase(
    lengths: jax.Array, answer: jax.Array, num_answers: jax.Array | int, steps: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The part after the input: DELIM at position L, then `num_answers` BLANK steps whose
    targets are answer[:, 0], answer[:, 1], ... Returns (inputs, targets, mask), each (B, steps),
    valid at positions >= L (zero elsewhere past the answer, which is the padding)."""
    batch, width = answer.shape
    pos = positions(batch, steps)
    offset = pos - lengths[:, None] - 1  # index into `answer` on the answer steps
    mask = (offset >= 0) & (offset < jnp.reshape(num_answers, (-1, 1)))
    picked = jnp.take_along_axis(answer, jnp.clip(offset, 0, width - 1), axis=1)
    targets = jnp.where(mask, picked, 0).astype(jnp.int32)
    inputs = jnp.where(pos == lengths[:, None], DELIM, BLANK).astype(jnp.int32)
    return inputs, targets, mask


def _check_vocab(name: str, vocab_size: int) -> None:
    _require(
        isinstance(vocab_size, (int, np.integer)) and vocab_size >= FIRST_CONTENT + 1,
        f"{name}: vocab_size must be an int >= 3 (0=blank, 1=delimiter, at least one content "
        f"token); got {vocab_size!r}",
    )


# --- copy -----------------------------------------------------------------------------------------


def make_copy(*, vocab_size: int = 10) -> Task:
    """Copy: read L tokens, then reproduce them in order after a delimiter.

    Input of length L: L content tokens drawn uniformly from {2..vocab_size-1}, then the
    delimiter `1`, then L blanks `0`; the target at the k-th blank is the k-th content token
    (T = 2L + 1 steps, L scored). This is the copy task of Arjovsky et al. 2016 (unitary RNNs) and
    of the S4 / Gu & Dao 2023 copying benchmark, with the blank delay between the content and the
    delimiter removed: the memory span grows with L itself. Default vocab_size=10 is Arjovsky's
    8 symbols + blank + delimiter.

    Example (L=3, vocab_size=10):
        inputs   7 2 5 1 0 0 0
        targets  0 0 0 0 7 2 5
        mask     . . . . x x x

    Difficulty: L tokens to hold for L+1 steps (`difficulty(L)`); nothing else to tune.
    Chance: 1/(vocab_size-2) per scored position (content tokens are uniform).
    """
    _check_vocab("copy", vocab_size)

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        steps = 2 * max_length + 1
        (u,) = _uniform_blocks(key, lengths.shape[0], (max_length,))
        tokens = _randint(u, FIRST_CONTENT, vocab_size)
        tail_inputs, targets, mask = _recall_phase(lengths, tokens, lengths, steps)
        pos = positions(lengths.shape[0], steps)
        inputs = jnp.where(pos < lengths[:, None], _pad_time(tokens, steps), tail_inputs)
        return Batch(inputs, targets, mask)

    return Task(
        name="copy",
        group="memory",
        generate=generate,
        seq_len=lambda length: 2 * length + 1,
        input_vocab=vocab_size,
        output_vocab=vocab_size,
        min_length=1,
        chance=1.0 / (vocab_size - FIRST_CONTENT),
        difficulty=lambda length: {"tokens_to_copy": length, "delay": length + 1},
        hparams={"vocab_size": vocab_size},
    )


# --- selective copy -----------------------------------------------------------------------------


def make_selective_copy(*, vocab_size: int = 16, num_tokens: int = 16) -> Task:
    """Selective copy (Gu & Dao 2023, Mamba, Sec. 3.1 / Fig. 2; the S4 repository's "variable"
    copying): `num_tokens` content tokens sit at random distinct positions of a length-L input
    whose other positions are the noise token `0`; after the delimiter `1` the model outputs the
    content tokens in their order of appearance, one per blank step.

    Layout: L input steps, DELIM, num_tokens BLANK answer steps (T = L + 1 + num_tokens).
    Content tokens are uniform over {2..vocab_size-1}; the positions are a uniform random subset.
    Deviation: Mamba/S4 mark the answer steps with `num_tokens` marker tokens and score from the
    first marker on; here one delimiter is followed by blanks (as in `copy`), one step later.
    Defaults follow Mamba: vocab 16 (14 content tokens + noise + delimiter), 16 tokens.

    Example (L=6, num_tokens=2, vocab_size=16):
        inputs   0 9 0 0 4 0 1 0 0
        targets  0 0 0 0 0 0 0 9 4
        mask     . . . . . . . x x

    Difficulty: num_tokens is FIXED at every L, so longer inputs add only noise to skip (the
    memory load stays `num_tokens`, the span to bridge grows). Needs L >= num_tokens.
    Chance: 1/(vocab_size-2) per scored position.
    """
    _check_vocab("selective_copy", vocab_size)
    _require(
        isinstance(num_tokens, (int, np.integer)) and num_tokens >= 1,
        f"selective_copy: num_tokens must be an int >= 1; got {num_tokens!r}",
    )

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        batch = lengths.shape[0]
        steps = max_length + 1 + num_tokens
        u_pos, u_tok = _uniform_blocks(key, batch, (max_length, num_tokens))
        in_input = positions(batch, max_length) < lengths[:, None]
        chosen = _gumbel_top_k(u_pos, jnp.where(in_input, 0.0, -jnp.inf), num_tokens)
        selected = jnp.zeros((batch, max_length), bool).at[
            jnp.arange(batch)[:, None], chosen
        ].set(True)
        tokens = _randint(u_tok, FIRST_CONTENT, vocab_size)
        rank = jnp.clip(jnp.cumsum(selected, axis=1) - 1, 0, num_tokens - 1)
        content = jnp.where(selected, jnp.take_along_axis(tokens, rank, axis=1), BLANK)
        tail_inputs, targets, mask = _recall_phase(lengths, tokens, num_tokens, steps)
        pos = positions(batch, steps)
        inputs = jnp.where(pos < lengths[:, None], _pad_time(content, steps), tail_inputs)
        return Batch(inputs, targets, mask)

    return Task(
        name="selective_copy",
        group="memory",
        generate=generate,
        seq_len=lambda length: length + 1 + num_tokens,
        input_vocab=vocab_size,
        output_vocab=vocab_size,
        min_length=num_tokens,
        chance=1.0 / (vocab_size - FIRST_CONTENT),
        difficulty=lambda length: {
            "num_tokens": num_tokens,
            "noise_tokens": length - num_tokens,
            "max_delay": length + num_tokens,
        },
        hparams={"vocab_size": vocab_size, "num_tokens": num_tokens},
    )


# --- MQAR -----------------------------------------------------------------------------------------


def make_mqar(*, vocab_size: int = 8192, num_kv_pairs: int = 8, power_a: float = 0.01,
              random_non_queries: bool = True) -> Task:
    """Multi-query associative recall (Arora, Eyuboglu et al. 2023, "Zoology"), as Zoology's
    `multiquery_ar` generator defines it.

    A length-L input starts with n = num_kv_pairs key-value pairs `k1 v1 k2 v2 ...`: keys are
    distinct, uniform over {1..vocab_size//2 - 1}; values distinct, uniform over
    {vocab_size//2..vocab_size-1} (disjoint halves). The rest, positions 2n..L-1, holds
    s = (L - 2n)//2 query slots at offsets 0, 2, 4, ... from 2n. Pair i is queried once: its key
    is written into slot g_i, where g_1, g_2, ... are drawn one after another without replacement
    with P(g) proportional to (g+1)^(power_a - 1) (Zoology's power law, power_a=0.01 puts most
    queries right after the pairs; power_a=1 is uniform). The target at a query position is the
    paired value; only query positions are scored. Every other position is noise, uniform over
    the WHOLE vocabulary (Zoology's `random_non_queries=True`), so noise may repeat a key; it is
    never scored. With `random_non_queries=False` (the setting of Zoology's Figure 2 configs)
    those positions hold token 0 instead.

    Example (vocab_size=8, n=2, L=9; keys from {1,2,3}, values from {4..7}):
        inputs   3 6 1 4 1 5 3 2 7
        targets  0 0 0 0 4 0 6 0 0
        mask     . . . . x . x . .
    (slots at positions 4, 6, 8; key 1 in slot 0, key 3 in slot 1; positions 5, 7, 8 noise.)

    Difficulty: num_kv_pairs is FIXED at every L (Zoology sweeps n and L separately); longer
    inputs add query slots, so the power law spreads queries further from their pairs
    (`difficulty(L)`). Differences from Zoology: odd L is allowed (its last step is noise) and
    vocab_size need not exceed L. Needs L >= 4n (as Zoology's assertion: >= n query slots) and
    vocab_size >= 2n + 2 (n distinct keys in {1..vocab_size//2-1}).
    Chance: 1/(vocab_size - vocab_size//2) per query (values are uniform over their half).
    """
    _require(
        isinstance(num_kv_pairs, (int, np.integer)) and num_kv_pairs >= 1,
        f"mqar: num_kv_pairs must be an int >= 1; got {num_kv_pairs!r}",
    )
    _require(
        isinstance(vocab_size, (int, np.integer)) and vocab_size >= 2 * num_kv_pairs + 2,
        f"mqar: num_kv_pairs={num_kv_pairs} needs vocab_size >= {2 * num_kv_pairs + 2} "
        f"(distinct keys from 1..vocab_size//2-1, values from the upper half); got {vocab_size!r}",
    )
    _require(
        isinstance(power_a, (int, float)) and power_a > 0,
        f"mqar: power_a must be > 0 (P(slot g) ~ (g+1)^(power_a-1)); got {power_a!r}",
    )
    _require(
        isinstance(random_non_queries, bool),
        f"mqar: random_non_queries must be true or false; got {random_non_queries!r}",
    )
    num_pairs, half = int(num_kv_pairs), vocab_size // 2
    context = 2 * num_pairs

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        batch = lengths.shape[0]
        max_slots = (max_length - context) // 2
        u_keys, u_vals, u_slots, u_noise = _uniform_blocks(
            key, batch, (half - 1, vocab_size - half, max_slots, max_length)
        )
        keys = 1 + _gumbel_top_k(u_keys, jnp.zeros_like(u_keys), num_pairs)
        values = half + _gumbel_top_k(u_vals, jnp.zeros_like(u_vals), num_pairs)
        slot = jnp.arange(max_slots)
        row_slots = (lengths[:, None] - context) // 2
        log_p = (power_a - 1.0) * jnp.log1p(slot.astype(jnp.float32))
        chosen = _gumbel_top_k(u_slots, jnp.where(slot < row_slots, log_p, -jnp.inf), num_pairs)
        owner = jnp.full((batch, max_slots), -1, jnp.int32).at[
            jnp.arange(batch)[:, None], chosen
        ].set(jnp.arange(num_pairs, dtype=jnp.int32))

        pos = positions(batch, max_length)
        offset = pos - context
        slot_at = offset // 2
        is_slot = (offset >= 0) & (offset % 2 == 0) & (slot_at < max_slots)
        owners = jnp.take_along_axis(owner, jnp.clip(slot_at, 0, max_slots - 1), axis=1)
        pair = jnp.where(is_slot, owners, -1)
        mask = pair >= 0  # chosen slots lie inside the row's length by construction
        pair_c = jnp.clip(pair, 0, num_pairs - 1)
        query_key = jnp.take_along_axis(keys, pair_c, axis=1)
        kv = jnp.stack([keys, values], axis=-1).reshape(batch, context)
        noise = _randint(u_noise, 0, vocab_size) if random_non_queries else 0
        inputs = jnp.where(offset < 0, _pad_time(kv, max_length), jnp.where(mask, query_key, noise))
        inputs = jnp.where(pos < lengths[:, None], inputs, 0).astype(jnp.int32)
        targets = jnp.where(mask, jnp.take_along_axis(values, pair_c, axis=1), 0)
        return Batch(inputs, targets.astype(jnp.int32), mask)

    def difficulty(length: int) -> dict:
        slots = (length - context) // 2
        return {
            "num_kv_pairs": num_pairs,
            "query_slots": slots,
            "power_a": power_a,
            "recall_distance_range": (2, context + 2 * (slots - 1)),
        }

    return Task(
        name="mqar",
        group="memory",
        generate=generate,
        seq_len=lambda length: length,
        input_vocab=vocab_size,
        output_vocab=vocab_size,
        min_length=2 * context,
        chance=1.0 / (vocab_size - half),
        difficulty=difficulty,
        hparams={"vocab_size": vocab_size, "num_kv_pairs": num_pairs, "power_a": power_a},
    )


# --- induction heads ------------------------------------------------------------------------------


def make_induction_heads(*, vocab_size: int = 16) -> Task:
    """Induction heads, in the synthetic form of H3 (Fu et al. 2023, Sec. 3.1) and Mamba
    (Gu & Dao 2023, Sec. 4.1.2) of Olsson et al. 2022's `[A][B] ... [A] -> [B]` mechanism.

    A length-L input of content tokens uniform over {2..vocab_size-1} holds the trigger `1`
    exactly twice: once at a position p uniform over {0..L-3}, and again at the last position L-1.
    The only scored position is L-1, whose target is the token that followed the first trigger,
    input[p+1] (always a content token). Choice: p is uniform over the whole input (H3 uses a
    fixed-size prefix region), so the recall distance L-1-p spans {2..L-1} and grows with L.

    Example (L=7, vocab_size=16):
        inputs   5 1 9 3 12 4 1
        targets  0 0 0 0 0  0 9
        mask     . . . . .  . x

    Difficulty: one token to recall over a distance uniform in {2..L-1} (`difficulty(L)`).
    Chance: 1/(vocab_size-2).
    """
    _check_vocab("induction_heads", vocab_size)

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        batch = lengths.shape[0]
        u_tok, u_pos = _uniform_blocks(key, batch, (max_length, 1))
        tokens = _randint(u_tok, FIRST_CONTENT, vocab_size)
        first = _randint(u_pos, 0, lengths[:, None] - 2)
        pos = positions(batch, max_length)
        last = pos == lengths[:, None] - 1
        inputs = jnp.where((pos == first) | last, DELIM, tokens)
        inputs = jnp.where(pos < lengths[:, None], inputs, 0)
        answer = jnp.take_along_axis(tokens, first + 1, axis=1)
        targets = jnp.where(last, answer, 0).astype(jnp.int32)
        return Batch(inputs.astype(jnp.int32), targets, last)

    return Task(
        name="induction_heads",
        group="memory",
        generate=generate,
        seq_len=lambda length: length,
        input_vocab=vocab_size,
        output_vocab=vocab_size,
        min_length=3,
        chance=1.0 / (vocab_size - FIRST_CONTENT),
        difficulty=lambda length: {"recall_distance_range": (2, length - 1)},
        hparams={"vocab_size": vocab_size},
    )


# --- adding problem -------------------------------------------------------------------------------


def make_adding() -> Task:
    """The adding problem (Hochreiter & Schmidhuber 1997), in the standard modern form
    (Le, Jaitly & Hinton 2015; Arjovsky et al. 2016).

    Real inputs (B, T, 2), T = L: channel 0 holds values uniform on [0, 1); channel 1 is a marker
    with exactly two ones, one at a position uniform over the first half {0..L//2-1} and one
    uniform over the second half {L//2..L-1}. The regression target, scored at the last position
    L-1 only, is the sum of the two marked values. (The 1997 original draws values from [-1, 1],
    puts the first marker in the first 10 steps and targets 0.5 + (X1+X2)/4; we follow the form the
    references and later papers use.)

    Example (L=4): values 0.2 0.7 0.1 0.5, markers 0 1 1 0 -> target at step 3 is 0.8;
    mask . . . x.

    Difficulty: the first value must be held for between L - L//2 and L-1 steps.
    Chance (MSE of the input-blind best guess, the constant 1 = E[sum]): Var(U1 + U2) = 2/12 =
    1/6 ~ 0.1667 exactly (the folklore 0.167; Le et al. quote 0.1767).
    """

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        batch = lengths.shape[0]
        values, u_first, u_second = _uniform_blocks(key, batch, (max_length, 1, 1))
        length = lengths[:, None]
        pos = positions(batch, max_length)
        values = jnp.where(pos < length, values, 0.0)
        first = _randint(u_first, 0, length // 2)
        second = _randint(u_second, length // 2, length)
        marker = (pos == first) | (pos == second)
        total = jnp.sum(jnp.where(marker, values, 0.0), axis=1, keepdims=True)
        mask = pos == length - 1
        inputs = jnp.stack([values, marker.astype(jnp.float32)], axis=-1)
        targets = jnp.where(mask, total, 0.0).astype(jnp.float32)
        return Batch(inputs, targets, mask)

    return Task(
        name="adding",
        group="memory",
        generate=generate,
        seq_len=lambda length: length,
        input_vocab=2,
        output_vocab=0,
        min_length=2,
        chance=1.0 / 6.0,
        difficulty=lambda length: {"hold_steps_range": (length - length // 2, length - 1)},
        hparams={},
        real_inputs=True,
    )


# --- passkey retrieval ----------------------------------------------------------------------------

KEY_MARK = 2  # passkey: "the pass key is"
FIRST_DIGIT = 3  # passkey: digits 0..9 are tokens 3..12
FIRST_FILLER = FIRST_DIGIT + 10  # passkey: filler tokens 13..13+filler_period-1


def make_passkey(*, num_digits: int = 5, filler_period: int = 3) -> Task:
    """Passkey retrieval (Mohtashami & Jaggi 2023, "Landmark Attention"), tokenised.

    Tokens: 0 blank, 1 query, 2 key marker ("The pass key is"), 3..12 the digits 0..9,
    13..13+filler_period-1 filler. A length-L input is periodic filler (token 13 + t mod
    filler_period at position t, standing for the repeated "The grass is green. The sky is
    blue. ..." sentences) with the block `marker d1 .. dn` (n = num_digits uniform digits)
    overwriting it at a start position uniform over {0..L-n-1}. Then the query `1` and n blank
    steps, whose targets are the digit tokens d1..dn in order (T = L + 1 + n).

    Example (L=6, num_digits=2, filler_period=2; digits 4, 7 are tokens 7, 10):
        inputs   13 2 7 10 13 14 1 0  0
        targets  0  0 0 0  0  0  0 7  10
        mask     .  . . .  .  .  . x  x

    Difficulty: num_digits FIXED; the key sits anywhere, so the recall distance (key marker to
    query) is uniform over {n+1..L} and grows with L.
    Chance: 0.1 per scored digit.
    """
    _require(
        isinstance(num_digits, (int, np.integer)) and num_digits >= 1,
        f"passkey: num_digits must be an int >= 1; got {num_digits!r}",
    )
    _require(
        isinstance(filler_period, (int, np.integer)) and filler_period >= 1,
        f"passkey: filler_period must be an int >= 1; got {filler_period!r}",
    )
    vocab = FIRST_FILLER + filler_period

    def generate(key: jax.Array, lengths: jax.Array, max_length: int) -> Batch:
        batch = lengths.shape[0]
        steps = max_length + 1 + num_digits
        u_digits, u_start = _uniform_blocks(key, batch, (num_digits, 1))
        answer = FIRST_DIGIT + _randint(u_digits, 0, 10)
        start = _randint(u_start, 0, lengths[:, None] - num_digits)
        pos = positions(batch, steps)
        offset = pos - start - 1  # digit index inside the key block
        digit_at = jnp.take_along_axis(answer, jnp.clip(offset, 0, num_digits - 1), axis=1)
        filler = FIRST_FILLER + pos % filler_period
        in_key = (offset >= 0) & (offset < num_digits)
        haystack = jnp.where(pos == start, KEY_MARK, jnp.where(in_key, digit_at, filler))
        tail_inputs, targets, mask = _recall_phase(lengths, answer, num_digits, steps)
        inputs = jnp.where(pos < lengths[:, None], haystack, tail_inputs).astype(jnp.int32)
        return Batch(inputs, targets, mask)

    return Task(
        name="passkey",
        group="memory",
        generate=generate,
        seq_len=lambda length: length + 1 + num_digits,
        input_vocab=vocab,
        output_vocab=vocab,
        min_length=num_digits + 1,
        chance=0.1,
        difficulty=lambda length: {
            "num_digits": num_digits,
            "recall_distance_range": (num_digits + 1, length),
        },
        hparams={"num_digits": num_digits, "filler_period": filler_period},
    )


TASKS = {
    "copy": make_copy,
    "selective_copy": make_selective_copy,
    "mqar": make_mqar,
    "induction_heads": make_induction_heads,
    "adding": make_adding,
    "passkey": make_passkey,
}
