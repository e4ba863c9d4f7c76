"""Deterministic context-free tasks of the Chomsky hierarchy (Delétang et al., ICLR 2023).

"Neural Networks and the Chomsky Hierarchy", tasks/dcf/*: reverse_string, stack_manipulation,
modular_arithmetic_brackets, solve_equation. The model reads the input, then
`output_length(L)` blank steps on which the answer is scored (see `_chomsky.py`). Protocol:
train on lengths 1..40, test on 41..500. Length is the only difficulty knob, as in the paper:
each task needs a stack whose depth grows with L.

The two bracket tasks sample the paper's recursive grammar (`generate_one_expression_and_result`)
without recursion: a per-row stack machine emits one token per step, so any length in a bucket
compiles once. Shape letters: see `kernels/typing.py`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from seqbench.tasks._chomsky import Tape, check_at_least, chomsky_task, one_step, uniform_tokens
from seqbench.tasks.base import Task, positions


def make_reverse_string(*, vocab_size: int = 2) -> Task:
    """Reverse string: output s_L ... s_1 after reading s_1 ... s_L.

    Input: L i.i.d. uniform tokens in [0, vocab_size); token vocab_size is the blank. Output:
    L blank steps, step j (0-based) scored on s_{L-j}. L = 4, binary:

        inputs   0 1 1 0 2 2 2 2
        targets  0 0 0 0 0 1 1 0
        mask     . . . . T T T T

    Chance 1/vocab_size per scored step. The paper uses vocab_size = 2.
    Paper: Delétang et al. 2023, tasks/dcf/reverse_string.py.
    """
    check_at_least("reverse_string", "vocab_size", vocab_size, 2, "a string needs 2 symbols")

    def core(key, lengths, max_length):
        tokens = uniform_tokens(key, lengths, max_length, vocab_size)
        source = jnp.clip(lengths[:, None] - 1 - positions(*tokens.shape), 0, max_length - 1)
        return Tape(tokens, jnp.take_along_axis(tokens, source, axis=1))

    return chomsky_task(
        "reverse_string", "context_free", core,
        input_size=vocab_size, output_size=vocab_size, output_length=lambda n: n,
        min_length=1, chance=1.0 / vocab_size, hparams={"vocab_size": vocab_size},
        describe=lambda n: {"tokens_to_reverse": n},
    )


POP, PUSH_0, PUSH_1 = 2, 3, 4  # stack_manipulation actions; 0 and 1 are stack bits
TERMINATOR = 2  # output token that ends the final stack


def _final_stack(tokens: jax.Array, lengths: jax.Array, stack_lengths: jax.Array):
    """(top-to-bottom stack as (B, max_length) bits, final depth (B,)), without a loop.

    Every initial bit and PUSH is a push, every POP a pop (ignored on an empty stack). The
    depth d_t after step t is the running sum S_t reflected at 0: d_t = S_t - min(0, min S_<=t).
    A push at t survives iff the depth never drops below d_t later; it then sits d_t - 1 from
    the bottom, i.e. at D - d_t from the top, where D is the final depth.
    """
    batch, width = tokens.shape
    pos = positions(batch, width)
    inside = pos < lengths[:, None]
    initial = pos < stack_lengths[:, None]
    push = inside & (initial | (tokens >= PUSH_0))
    pop = inside & ~initial & (tokens == POP)
    running = jnp.cumsum(push.astype(jnp.int32) - pop.astype(jnp.int32), axis=1)
    depth = running - jnp.minimum(jax.lax.cummin(running, axis=1), 0)
    final = depth[:, -1]
    later_min = jax.lax.cummin(depth, axis=1, reverse=True)
    later_min = jnp.concatenate([later_min[:, 1:], jnp.full((batch, 1), width + 1)], axis=1)
    survives = push & (later_min >= depth)
    value = jnp.where(initial, tokens, tokens - PUSH_0)
    slot = jnp.where(survives, final[:, None] - depth, width)  # width: dropped
    rows = jnp.broadcast_to(jnp.arange(batch)[:, None], slot.shape)
    stack = jnp.zeros((batch, width), jnp.int32).at[rows, slot].set(value, mode="drop")
    return stack, final


def make_stack_manipulation() -> Task:
    """Stack manipulation: run POP / PUSH 0 / PUSH 1 on a given stack, output the final stack.

    Tokens: stack bits 0, 1; actions POP = 2, PUSH 0 = 3, PUSH 1 = 4; blank = 5. Input: a stack
    of s uniform bits, bottom to top, with s uniform in [1, L-1] (s = 1 when L = 1), then L - s
    uniform actions; POP on an empty stack is ignored. Output: L + 1 blank steps carrying the
    final stack top to bottom, the terminator 2, then 0s; scored up to and including the
    terminator (the paper's accuracy mask). L = 7 ("0 1 1 0 PUSH1 POP POP" leaves 0 1 1):

        inputs   0 1 1 0 4 2 2 5 5 5 5 5 5 5 5
        targets  0 0 0 0 0 0 0 1 1 0 2 0 0 0 0
        mask     . . . . . . . T T T T . . . .

    The paper's loss also covered the 0s after the terminator; here they are unscored (one
    mask serves loss and accuracy), which does not change the reported accuracy.
    Chance ~0.5 per scored step (stack bits are uniform; one terminator per row).
    Paper: Delétang et al. 2023, tasks/dcf/stack_manipulation.py.
    """

    def core(key, lengths, max_length):
        k_size, k_bits, k_actions = jax.random.split(key, 3)
        batch = lengths.shape[0]
        stack_lengths = jax.random.randint(k_size, (batch,), 1, jnp.maximum(lengths, 2))
        bits = uniform_tokens(k_bits, lengths, max_length, 2)
        actions = POP + uniform_tokens(k_actions, lengths, max_length, 3)
        pos = positions(batch, max_length)
        tokens = jnp.where(pos < stack_lengths[:, None], bits, actions)
        tokens = jnp.where(pos < lengths[:, None], tokens, 0)
        stack, depth = _final_stack(tokens, lengths, stack_lengths)
        out_pos = positions(batch, max_length + 1)
        outputs = jnp.pad(stack, ((0, 0), (0, 1)))
        outputs = jnp.where(out_pos == depth[:, None], TERMINATOR, outputs)
        return Tape(tokens, outputs, scored=out_pos <= depth[:, None])

    return chomsky_task(
        "stack_manipulation", "context_free", core,
        input_size=5, output_size=3, output_length=lambda n: n + 1, min_length=1,
        chance=0.5, hparams={},
        describe=lambda n: {"initial_stack": f"1..{max(n - 1, 1)}", "max_final_depth": n},
    )


class _Symbols(NamedTuple):
    """Token ids of a bracket-expression vocabulary (digits are 0..modulus-1)."""

    plus: int
    minus: int
    times: int  # -1 where the vocabulary has no `*`
    open: int
    close: int


def _sample_expressions(
    key: jax.Array, lengths: jax.Array, width: int, modulus: int, symbols: _Symbols,
    operators: Sequence[int],
) -> jax.Array:
    """(B, width) tokens: random bracket expressions of exactly `lengths` tokens, then 0s.

    The paper's grammar, sampled by the same rules: length 1: `d`; 2: `-d`; 3: `(d)`; 4: `(-d)`;
    n >= 5: `(E1 op E2)` with len(E1) uniform in [1, n-4], len(E2) = n-3-len(E1), op uniform
    over `operators`, digits uniform. A per-row stack of pending items (expression of length
    n > 0, or literal token -tok < 0) is popped once per step and emits exactly one token.
    """
    batch = lengths.shape[0]
    k_split, k_op, k_digit = jax.random.split(key, 3)
    shape = (width, batch)
    splits = jax.random.randint(k_split, shape, 0, 2**30)  # mod a range <= width: bias < 2^-20
    ops = jnp.asarray(operators, jnp.int32)[jax.random.randint(k_op, shape, 0, len(operators))]
    digits = jax.random.randint(k_digit, shape, 0, modulus)
    stack = jnp.zeros((batch, width + 4), jnp.int32).at[:, 0].set(lengths)
    depth = jnp.ones((batch,), jnp.int32)
    write = jax.vmap(lambda row, items, at: jax.lax.dynamic_update_slice(row, items, (at,)))

    def step(carry, xs):
        stack, depth = carry
        split, op, digit = xs
        under = jnp.maximum(depth - 1, 0)
        top = jnp.take_along_axis(stack, under[:, None], axis=1)[:, 0]
        size = jnp.maximum(top, 0)
        left = 1 + split % jnp.maximum(size - 4, 1)
        token = jnp.select(
            [top < 0, size == 1, size == 2], [-top, digit, jnp.full_like(top, symbols.minus)],
            jnp.full_like(top, symbols.open),
        )
        zero = jnp.zeros_like(top)
        items = jnp.select(  # pushed bottom to top
            [size[:, None] >= 5, size[:, None] >= 3, size[:, None] == 2],
            [
                jnp.stack([zero - symbols.close, size - 3 - left, -op, left], axis=1),
                jnp.stack([zero - symbols.close, size - 2, zero, zero], axis=1),
                jnp.stack([zero + 1, zero, zero, zero], axis=1),
            ],
            jnp.zeros((batch, 4), jnp.int32),
        )
        count = jnp.select([size >= 5, size >= 3, size == 2], [4, 2, 1], 0)
        active = depth > 0
        stack = write(stack, items, under)
        depth = jnp.where(active, depth - 1 + count, 0)
        return (stack, depth), jnp.where(active, token, 0)

    _, tokens = jax.lax.scan(step, (stack, depth), (splits, ops, digits))
    return tokens.T


EMPTY, VALUE = -2, -1  # frame states of the evaluator; 0, 1, 2: pending +, -, *


def _evaluate_expressions(
    tokens: jax.Array, lengths: jax.Array, modulus: int, symbols: _Symbols
) -> jax.Array:
    """(B,) value mod `modulus` of fully bracketed expressions (unary minus only before a digit).

    One frame per open bracket holds (accumulated value, state). A digit or a closed bracket's
    value combines into the current frame with its pending operator; `-` is binary when the
    frame already holds a value, otherwise it negates the next digit.
    """
    batch, width = tokens.shape
    frames = width // 2 + 2
    rows = jnp.arange(batch)

    def step(carry, xs):
        acc, state, depth, negate = carry
        token, active = xs
        is_digit = token < modulus
        is_open, is_close = token == symbols.open, token == symbols.close
        binary_minus = (token == symbols.minus) & (state[rows, depth] == VALUE)
        frame = jnp.where(active, depth + is_open - is_close, depth)
        f_acc, f_state = acc[rows, frame], state[rows, frame]
        value = jnp.where(is_digit, jnp.where(negate, -token, token), acc[rows, depth])
        combined = jnp.select(
            [f_state == 0, f_state == 1, f_state == 2],
            [f_acc + value, f_acc - value, f_acc * value], value,
        ) % modulus
        closes_value = is_digit | is_close
        new_acc = jnp.select([is_open, closes_value], [jnp.zeros_like(f_acc), combined], f_acc)
        new_state = jnp.select(
            [is_open, closes_value, token == symbols.plus, binary_minus, token == symbols.times],
            [EMPTY, VALUE, 0, 1, 2], f_state,
        )
        acc = acc.at[rows, frame].set(jnp.where(active, new_acc, f_acc))
        state = state.at[rows, frame].set(jnp.where(active, new_state, f_state))
        unary = (token == symbols.minus) & ~binary_minus
        negate = jnp.where(active, unary, negate)
        return (acc, state, frame, negate), None

    init = (
        jnp.zeros((batch, frames), jnp.int32),
        jnp.full((batch, frames), EMPTY, jnp.int32),
        jnp.zeros((batch,), jnp.int32),
        jnp.zeros((batch,), bool),
    )
    active = positions(batch, width) < lengths[:, None]
    (acc, _, _, _), _ = jax.lax.scan(step, init, (tokens.T, active.T))
    return acc[:, 0]


def make_modular_arithmetic_brackets(*, modulus: int = 5, mult: bool = True) -> Task:
    """Modular arithmetic with brackets: evaluate a random bracketed expression mod `modulus`.

    Tokens (the paper's): digits 0..m-1, `+` = m, `-` = m+1, `*` = m+2, `(` = m+3, `)` = m+4,
    `x` = m+5 (in the paper's vocabulary, never sampled), blank = m+6. Input: an expression of
    exactly L tokens from the paper's grammar (see `_sample_expressions`: `d`, `-d`, `(d)`,
    `(-d)`, `(E op E)` with a uniform split and op uniform over {+, -, *} when mult, else
    {+, -}). Target at the blank step: its value mod m. L = 6, "(-2+3)" = 1:

        inputs    8 6 2 5 3 9 11
        targets   0 0 0 0 0 0  1
        mask      . . . . . .  T

    Chance: with mult, 0 is the likeliest value: if P(E = 0) = p for both operands and nonzero
    values are uniform, `(E op E)` is 0 with p = 2/3 (p^2 + (1-p)^2/(m-1)) + 1/3 (1 - (1-p)^2),
    whose fixed point is p = 2/(m+1) for prime m (1/3 at m = 5; measured 0.32 at L = 41..500).
    Without mult the value is uniform: 1/m. The paper registers this task with mult=True, m = 5.
    Paper: Delétang et al. 2023, tasks/dcf/modular_arithmetic_brackets.py.
    """
    check_at_least("modular_arithmetic_brackets", "modulus", modulus, 2, "residues need 2 classes")
    symbols = _Symbols(modulus, modulus + 1, modulus + 2, modulus + 3, modulus + 4)
    operators = symbols[: 3 if mult else 2]

    def core(key, lengths, max_length):
        tokens = _sample_expressions(key, lengths, max_length, modulus, symbols, operators)
        value = _evaluate_expressions(tokens, lengths, modulus, symbols)
        return Tape(tokens, value[:, None])

    return chomsky_task(
        "modular_arithmetic_brackets", "context_free", core,
        input_size=modulus + 6, output_size=modulus, output_length=one_step, min_length=1,
        chance=2.0 / (modulus + 1) if mult else 1.0 / modulus,
        hparams={"modulus": modulus, "mult": mult},
        describe=lambda n: {"expression_tokens": n, "modulus": modulus},
    )


def make_solve_equation(*, modulus: int = 5) -> Task:
    """Solve equation: find the digit `x` stands for in `E(x) = v` (mod `modulus`).

    Tokens (the paper's): digits 0..m-1, `+` = m, `-` = m+1, `(` = m+2, `)` = m+3, `x` = m+4,
    `=` = m+5, blank = m+6. Input: a bracket expression of L - 2 tokens from the paper's
    grammar with operators {+, -} only (so the solution is unique), one digit replaced by `x`,
    then `=` and the expression's value v. The replaced digit is the paper's: a uniform start
    position, then the first digit at or after it (wrapping around). Target at the blank step:
    the replaced digit. L = 7, "(x+3)=0" with x = 2:

        inputs   7 9 5 3 8 10 0 11
        targets  0 0 0 0 0  0 0  2
        mask     . . . . .  . .  T

    min_length 3 (the paper feeds all-zero dummies below 3). Chance 1/m (digits are uniform).
    Paper: Delétang et al. 2023, tasks/dcf/solve_equation.py.
    """
    check_at_least("solve_equation", "modulus", modulus, 2, "residues need 2 classes")
    symbols = _Symbols(modulus, modulus + 1, -1, modulus + 2, modulus + 3)
    unknown, equals = modulus + 4, modulus + 5

    def core(key, lengths, max_length):
        k_expr, k_pick = jax.random.split(key)
        batch, width = lengths.shape[0], max_length - 2
        sizes = lengths - 2
        expr = _sample_expressions(k_expr, sizes, width, modulus, symbols, symbols[:2])
        value = _evaluate_expressions(expr, sizes, modulus, symbols)
        pos = positions(batch, width)
        is_digit = (expr < modulus) & (pos < sizes[:, None])
        start = jax.random.randint(k_pick, (batch,), 0, sizes)
        after = is_digit & (pos >= start[:, None])
        pick = jnp.where(after.any(axis=1), jnp.argmax(after, axis=1), jnp.argmax(is_digit, axis=1))
        solution = jnp.take_along_axis(expr, pick[:, None], axis=1)
        tokens = jnp.pad(jnp.where(pos == pick[:, None], unknown, expr), ((0, 0), (0, 2)))
        pos = positions(batch, max_length)
        tokens = jnp.where(pos == sizes[:, None], equals, tokens)
        tokens = jnp.where(pos == sizes[:, None] + 1, value[:, None], tokens)
        return Tape(tokens, solution)

    return chomsky_task(
        "solve_equation", "context_free", core,
        input_size=modulus + 6, output_size=modulus, output_length=one_step, min_length=3,
        chance=1.0 / modulus, hparams={"modulus": modulus},
        describe=lambda n: {"expression_tokens": n - 2, "modulus": modulus},
    )


TASKS = {
    "reverse_string": make_reverse_string,
    "stack_manipulation": make_stack_manipulation,
    "modular_arithmetic_brackets": make_modular_arithmetic_brackets,
    "solve_equation": make_solve_equation,
}
