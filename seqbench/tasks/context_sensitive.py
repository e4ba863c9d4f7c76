"""Context-sensitive tasks of the Chomsky hierarchy benchmark (Delétang et al., ICLR 2023).

"Neural Networks and the Chomsky Hierarchy", tasks/cs/*: duplicate_string,
missing_duplicate_string, odds_first, binary_addition, binary_multiplication, compute_sqrt,
bucket_sort. The model reads the input, then `output_length(L)` blank steps on which the answer
is scored (see `_chomsky.py`). Protocol: train on lengths 1..40, test on 41..500. Length is the
only difficulty knob, as in the paper.

Binary arithmetic runs on bit vectors (little-endian, one int32 0/1 per bit), so numbers of
hundreds of bits are exact: additions use carry-lookahead (the carry into bit i is set by the
last lower bit that generates or kills a carry), products shift-and-add column sums whose
bit planes are then added, square roots the digit-by-digit method.
Answers whose length depends on the data (sums, products) are written as the paper does: the
bits, a terminator 2, then 0s up to the fixed output length; scored up to the terminator.
Shape letters: see `kernels/typing.py`; a bit vector's length is spelled `width`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqbench.tasks._chomsky import Tape, check_at_least, chomsky_task, one_step, uniform_tokens
from seqbench.tasks.base import Task, positions


def make_duplicate_string(*, vocab_size: int = 2) -> Task:
    """Duplicate string: output s_1 ... s_L s_1 ... s_L after reading s_1 ... s_L.

    Input: L i.i.d. uniform tokens in [0, vocab_size); blank = vocab_size. Output: 2L blank
    steps, all scored. L = 3, binary, "101" -> "101101":

        inputs   1 0 1 2 2 2 2 2 2
        targets  0 0 0 1 0 1 1 0 1
        mask     . . . T T T T T T

    Chance 1/vocab_size per scored step. The paper uses vocab_size = 2.
    Paper: Delétang et al. 2023, tasks/cs/duplicate_string.py.
    """
    check_at_least("duplicate_string", "vocab_size", vocab_size, 2, "a string needs 2 symbols")

    def core(key, lengths, max_length):
        tokens = uniform_tokens(key, lengths, max_length, vocab_size)
        source = positions(lengths.shape[0], 2 * max_length) % lengths[:, None]
        return Tape(tokens, jnp.take_along_axis(tokens, source, axis=1))

    return chomsky_task(
        "duplicate_string", "context_sensitive", core,
        input_size=vocab_size, output_size=vocab_size, output_length=lambda n: 2 * n,
        min_length=1, chance=1.0 / vocab_size, hparams={"vocab_size": vocab_size},
        describe=lambda n: {"tokens_to_copy_twice": n},
    )


MISSING, FILLER = 2, 3  # missing_duplicate_string: the hidden bit, the odd-length filler


def make_missing_duplicate_string() -> Task:
    """Missing duplicate: in `w w` with one bit hidden, output the hidden bit.

    Tokens: bits 0, 1; hidden = 2; filler = 3; blank = 4. Input: a uniform binary w of
    L // 2 bits, written twice, one uniform position of the 2 * (L // 2) replaced by 2, and a 3
    at the end when L is odd. Target at the blank step: the hidden bit. L = 7, w = 101:

        inputs   1 0 1 1 2 1 3 4
        targets  0 0 0 0 0 0 0 0
        mask     . . . . . . . T

    min_length 2 (the paper feeds a constant dummy at L = 1). Chance 0.5. Every bit of w w
    occurs twice, so the hidden bit is also the parity (XOR) of the visible bits: a regular
    shortcut, which an LSTM finds (BUILD_NOTES.md, "Reproductions").
    Paper: Delétang et al. 2023, tasks/cs/missing_duplicate_string.py.
    """

    def core(key, lengths, max_length):
        k_bits, k_hide = jax.random.split(key)
        batch = lengths.shape[0]
        half = lengths // 2
        bits = uniform_tokens(k_bits, half, max_length, 2)
        pos = positions(batch, max_length)
        twice = jnp.take_along_axis(bits, pos % half[:, None], axis=1)
        hidden = jax.random.randint(k_hide, (batch,), 0, 2 * half)
        answer = jnp.take_along_axis(twice, hidden[:, None], axis=1)
        tokens = jnp.where(pos == hidden[:, None], MISSING, twice)
        tokens = jnp.where(pos < 2 * half[:, None], tokens, FILLER)
        tokens = jnp.where(pos < lengths[:, None], tokens, 0)
        return Tape(tokens, answer)

    return chomsky_task(
        "missing_duplicate_string", "context_sensitive", core,
        input_size=4, output_size=2, output_length=one_step, min_length=2, chance=0.5,
        hparams={}, describe=lambda n: {"half_length": n // 2},
    )


def make_odds_first(*, vocab_size: int = 2) -> Task:
    """Odds first: output the tokens at odd (0-based) positions, then those at even positions.

    Input: L i.i.d. uniform tokens; blank = vocab_size. Output: L blank steps, all scored:
    s[1], s[3], ..., then s[0], s[2], ... (0-based; the paper's code takes `[1::2]` before
    `[::2]`, although its docstring example lists them the other way round). L = 5, "01101":

        inputs   0 1 1 0 1 2 2 2 2 2
        targets  0 0 0 0 0 1 0 0 1 1
        mask     . . . . . T T T T T

    Chance 1/vocab_size per scored step. The paper uses vocab_size = 2.
    Paper: Delétang et al. 2023, tasks/cs/odds_first.py.
    """
    check_at_least("odds_first", "vocab_size", vocab_size, 2, "a string needs 2 symbols")

    def core(key, lengths, max_length):
        tokens = uniform_tokens(key, lengths, max_length, vocab_size)
        j = positions(lengths.shape[0], max_length)
        odds = lengths[:, None] // 2
        source = jnp.where(j < odds, 2 * j + 1, 2 * (j - odds))
        source = jnp.clip(source, 0, max_length - 1)
        return Tape(tokens, jnp.take_along_axis(tokens, source, axis=1))

    return chomsky_task(
        "odds_first", "context_sensitive", core,
        input_size=vocab_size, output_size=vocab_size, output_length=lambda n: n,
        min_length=1, chance=1.0 / vocab_size, hparams={"vocab_size": vocab_size},
        describe=lambda n: {"tokens_to_reorder": n},
    )


def _add_bits(a: jax.Array, b: jax.Array, carry_in: int = 0) -> tuple[jax.Array, jax.Array]:
    """Little-endian (..., width) 0/1 int32 vectors: (a + b + carry_in mod 2^width, carry out
    (...,)).

    Carry-lookahead: the carry into bit i is decided by the last bit below i that generates
    (a = b = 1) or kills (a = b = 0) a carry; carry_in when there is none. A running max of
    2 * position + generates finds it in one parallel scan.
    """
    generate, kill = a & b, (1 - a) & (1 - b)
    code = jnp.where(generate | kill, 2 * jnp.arange(a.shape[-1]) + generate, -1)
    last = jax.lax.cummax(code, axis=a.ndim - 1)
    last = jnp.concatenate([jnp.full(a.shape[:-1] + (1,), -1), last], axis=-1)  # below bit i
    carries = jnp.where(last < 0, carry_in, last & 1)
    return a ^ b ^ carries[..., :-1], carries[..., -1]


def _multiply_bits(a: jax.Array, b: jax.Array) -> jax.Array:
    """(B, width) x (B, width) little-endian bits -> (B, 2·width) bits of the product.

    Column sums c_k = sum_i a_i b_(k-i) (shift-and-add, exact in int32 since c_k <= width), then
    the columns' bit planes are added: sum_k c_k 2^k = sum_p (plane p of c) 2^p.
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    batch, width = a.shape
    padded = jnp.pad(b, ((0, 0), (width, width)))

    def add_shifted(i, columns):
        shifted = jax.lax.dynamic_slice_in_dim(padded, width - i, 2 * width, axis=1)
        return columns + a[:, i, None] * shifted

    columns = jax.lax.fori_loop(0, width, add_shifted, jnp.zeros((batch, 2 * width), jnp.int32))
    total = jnp.zeros_like(columns)
    for bit in range(width.bit_length()):
        plane = (columns >> bit) & 1
        shifted = jnp.pad(plane, ((0, 0), (bit, 0)))[:, : 2 * width]
        total, _ = _add_bits(total, shifted)
    return total


def _isqrt_bits(number: jax.Array) -> jax.Array:
    """(B, 2·half) little-endian bits of n -> (B, half) little-endian bits of floor(sqrt(n)).

    Digit by digit: bring down the next pair of bits, rem = 4 rem + pair; if rem >= 4 root + 1
    subtract it and append a 1 to root, else append a 0.
    """
    batch, half = number.shape[0], number.shape[1] // 2
    width = half + 4  # rem <= 2 root < 2^(half+1), so 4 rem + 3 fits
    one_zero = jnp.tile(jnp.array([[1, 0]], jnp.int32), (batch, 1))

    def step(k, carry):
        rem, root = carry
        pair = jax.lax.dynamic_slice_in_dim(number, 2 * (half - 1 - k), 2, axis=1)
        rem = jnp.concatenate([pair, rem[:, :-2]], axis=1)
        trial = jnp.concatenate([one_zero, root[:, :-2]], axis=1)
        diff, fits = _add_bits(rem, 1 - trial, carry_in=1)  # rem - trial; carry out: no borrow
        rem = jnp.where(fits[:, None] == 1, diff, rem)
        root = jnp.concatenate([fits[:, None], root[:, :-1]], axis=1)
        return rem, root

    zeros = jnp.zeros((batch, width), jnp.int32)
    _, root = jax.lax.fori_loop(0, half, step, (zeros, zeros))
    return root[:, :half]


def _nonzero_bits(key: jax.Array, widths: jax.Array, width: int) -> jax.Array:
    """(B, width) bits: row i a uniform nonzero string of widths[i] bits (uniform in [1, 2^w-1]).

    Rejection sampling: rows that came out all zero are redrawn until none is left.
    """
    inside = positions(widths.shape[0], width) < widths[:, None]

    def draw(i):
        return jax.random.randint(jax.random.fold_in(key, i), inside.shape, 0, 2) * inside

    def redo(bits):
        return (bits.sum(axis=1) == 0) & (widths > 0)

    def body(carry):
        i, bits = carry
        return i + 1, jnp.where(redo(bits)[:, None], draw(i), bits)

    _, bits = jax.lax.while_loop(lambda c: redo(c[1]).any(), body, (1, draw(0)))
    return bits.astype(jnp.int32)


PLUS_OR_TIMES = 2  # the operator token of the binary tasks
END = 2  # the terminator after a variable-length binary answer


def _binary_operands(key: jax.Array, lengths: jax.Array, max_length: int):
    """`n op m` in little-endian binary, as the paper samples it (L >= 3).

    len(n) uniform in [1, L-2], len(m) = L-1-len(n), each number uniform in [1, 2^len - 1]
    (leading zeros allowed, written at the end in little-endian). Returns the (B, max_length)
    tokens and the two (B, max_length) bit vectors.
    """
    k_split, k_n, k_m = jax.random.split(key, 3)
    batch = lengths.shape[0]
    len_n = jax.random.randint(k_split, (batch,), 1, lengths - 1)
    len_m = lengths - 1 - len_n
    n = _nonzero_bits(k_n, len_n, max_length)
    m = _nonzero_bits(k_m, len_m, max_length)
    pos = positions(batch, max_length)
    m_at = jnp.take_along_axis(m, jnp.clip(pos - len_n[:, None] - 1, 0, max_length - 1), axis=1)
    second = jnp.where(pos == len_n[:, None], PLUS_OR_TIMES, m_at)
    tokens = jnp.where(pos < len_n[:, None], n, second)
    tokens = jnp.where(pos < lengths[:, None], tokens, 0)
    return tokens, n, m


def _terminated(bits: jax.Array, width: int) -> tuple[jax.Array, jax.Array]:
    """Bits without leading zeros, then END, then 0s, `width` wide; and the scored steps."""
    bits = jnp.pad(bits, ((0, 0), (0, max(0, width - bits.shape[1]))))[:, :width]
    pos = positions(bits.shape[0], width)
    size = jnp.max(jnp.where(bits == 1, pos + 1, 0), axis=1, keepdims=True)
    outputs = jnp.where(pos < size, bits, jnp.where(pos == size, END, 0))
    return outputs, pos <= size


def make_binary_addition() -> Task:
    """Binary addition: output n + m in little-endian binary, given `n + m` in little-endian.

    Tokens: bits 0, 1; `+` = 2; blank = 3. Input: n (len(n) uniform in [1, L-2] bits), `+`,
    m (L-1-len(n) bits); each number uniform in [1, 2^len - 1]. Output: L + 1 blank steps: the
    sum's bits (little-endian, no leading zeros), the terminator 2, then 0s; scored up to and
    including the terminator (the paper's accuracy mask). L = 5, "01+11" is 2 + 3 = 5:

        inputs   0 1 2 1 1 3 3 3 3 3 3
        targets  0 0 0 0 0 1 0 1 2 0 0
        mask     . . . . . T T T T . .

    min_length 3 (the paper writes a bare number without `+` below 3). The paper also trains on
    the 0s after the terminator; here they are unscored (one mask serves loss and accuracy),
    which leaves its reported accuracy unchanged. Chance ~0.5 per scored step.
    Paper: Delétang et al. 2023, tasks/cs/binary_addition.py.
    """

    def core(key, lengths, max_length):
        tokens, n, m = _binary_operands(key, lengths, max_length)
        total, carry = _add_bits(n, m)
        total = jnp.concatenate([total, carry[:, None]], axis=1)
        outputs, scored = _terminated(total, max_length + 1)
        return Tape(tokens, outputs, scored)

    return chomsky_task(
        "binary_addition", "context_sensitive", core,
        input_size=3, output_size=3, output_length=lambda n: n + 1, min_length=3,
        chance=0.5, hparams={}, describe=lambda n: {"operand_bits": f"1..{n - 2}"},
    )


def make_binary_multiplication() -> Task:
    """Binary multiplication: output n * m in little-endian binary, given `n * m`.

    Tokens: bits 0, 1; `*` = 2; blank = 3. Input: as binary_addition (len(n) uniform in
    [1, L-2], len(m) = L-1-len(n), numbers uniform in [1, 2^len - 1], little-endian). Output:
    L blank steps: the product's bits (at most L - 1), the terminator 2, then 0s; scored up to
    and including the terminator. L = 5, "01*11" is 2 * 3 = 6:

        inputs   0 1 2 1 1 3 3 3 3 3
        targets  0 0 0 0 0 0 1 1 2 0
        mask     . . . . . T T T T .

    min_length 3 (the paper uses a placeholder answer below 3). Chance ~0.5 per scored step
    (low product bits lean to 0). Paper: Delétang et al. 2023, tasks/cs/binary_multiplication.py.
    """

    def core(key, lengths, max_length):
        tokens, n, m = _binary_operands(key, lengths, max_length)
        outputs, scored = _terminated(_multiply_bits(n, m), max_length)
        return Tape(tokens, outputs, scored)

    return chomsky_task(
        "binary_multiplication", "context_sensitive", core,
        input_size=3, output_size=3, output_length=lambda n: n, min_length=3,
        chance=0.5, hparams={}, describe=lambda n: {"operand_bits": f"1..{n - 2}"},
    )


def make_compute_sqrt() -> Task:
    """Compute sqrt: output floor(sqrt(n)) in big-endian binary, given n in big-endian binary.

    Tokens: bits 0, 1; blank = 2. Input: n uniform in [1, 2^L - 1] as L big-endian bits
    (leading zeros kept). Output: ceil(L / 2) blank steps, the root's big-endian bits padded
    with leading zeros to that fixed width (a fixed length, so no terminator), all scored.
    L = 6, n = 100101 = 37, floor(sqrt(37)) = 6 = 110:

        inputs   1 0 0 1 0 1 2 2 2
        targets  0 0 0 0 0 0 1 1 0
        mask     . . . . . . T T T

    Chance ~0.5 per scored step (the top root bit is 1 with probability ~3/4).
    Paper: Delétang et al. 2023, tasks/cs/compute_sqrt.py.
    """

    def core(key, lengths, max_length):
        batch, half = lengths.shape[0], (max_length + 1) // 2
        tokens = _nonzero_bits(key, lengths, max_length)
        pos = positions(batch, 2 * half)
        source = jnp.clip(lengths[:, None] - 1 - pos, 0, max_length - 1)
        number = jnp.where(pos < lengths[:, None], jnp.take_along_axis(tokens, source, axis=1), 0)
        root = _isqrt_bits(number)  # little-endian, (B, half)
        digits = (lengths[:, None] + 1) // 2
        source = jnp.clip(digits - 1 - positions(batch, half), 0, half - 1)
        return Tape(tokens, jnp.take_along_axis(root, source, axis=1))

    return chomsky_task(
        "compute_sqrt", "context_sensitive", core,
        input_size=2, output_size=2, output_length=lambda n: (n + 1) // 2, min_length=1,
        chance=0.5, hparams={}, describe=lambda n: {"number_bits": n, "root_bits": (n + 1) // 2},
    )


def make_bucket_sort(*, vocab_size: int = 5) -> Task:
    """Bucket sort: output the input tokens in increasing order.

    Input: L i.i.d. uniform tokens in [0, vocab_size); blank = vocab_size. Output: L blank
    steps, all scored, the sorted string. L = 5, "20413" -> "01234":

        inputs   2 0 4 1 3 5 5 5 5 5
        targets  0 0 0 0 0 0 1 2 3 4
        mask     . . . . . T T T T T

    Chance 1/vocab_size for a constant guess. A position-aware blind guess does much better at
    long L (the sorted string is close to a fixed staircase: ~L/vocab_size of each token), so
    compare to that, not to 1/vocab_size. The paper uses vocab_size = 5.
    Paper: Delétang et al. 2023, tasks/cs/bucket_sort.py.
    """
    check_at_least("bucket_sort", "vocab_size", vocab_size, 2, "sorting needs 2 symbols")

    def core(key, lengths, max_length):
        tokens = uniform_tokens(key, lengths, max_length, vocab_size)
        inside = positions(*tokens.shape) < lengths[:, None]
        return Tape(tokens, jnp.sort(jnp.where(inside, tokens, vocab_size), axis=1))

    return chomsky_task(
        "bucket_sort", "context_sensitive", core,
        input_size=vocab_size, output_size=vocab_size, output_length=lambda n: n,
        min_length=1, chance=1.0 / vocab_size, hparams={"vocab_size": vocab_size},
        describe=lambda n: {"tokens_to_sort": n, "symbols": vocab_size},
    )


TASKS = {
    "duplicate_string": make_duplicate_string,
    "missing_duplicate_string": make_missing_duplicate_string,
    "odds_first": make_odds_first,
    "binary_addition": make_binary_addition,
    "binary_multiplication": make_binary_multiplication,
    "compute_sqrt": make_compute_sqrt,
    "bucket_sort": make_bucket_sort,
}
