"""Shape letters used in docstrings and `# shape=` comments across `kernels` and `seqbench`.

One legend for the whole code base: a module that writes array shapes says "Shape letters: see
`kernels/typing.py`" and uses these letters with these meanings only.

    B  batch: any number of leading axes, written `*B` (or `...` where they are free)
    T  time steps (of the padded sequence)
    L  input length of a task instance (steps of the question; T = task.seq_len(L))
    S  cache slots (attention's max_length)
    C  chunk length of a chunked implementation
    M  chunks, ceil(T / C)
    D  features / hidden width (d_hidden; the elementwise width of a diagonal recurrence)
    E  expanded channels (expand · D, Mamba-style)
    H  heads
    K  key dimension per head (attention's head_dim is K = V)
    V  value dimension per head
    N  state size per channel (d_state)
    R  rank (low-rank factors, dt_rank)
    P  positions scored (or measured)
    O  output vocabulary / output dim

Products are written with `·` (H·K); any other size is spelled out by name (`d_in`, `vocab`,
`max_length`, ...) or given a letter defined where it is used (G gate blocks, F trailing
feature axes). Runtime error messages spell B as `*batch`. Capital letters inside formulas
that name matrices, parameters or other quantities (the SSM papers' A, B, C, D; a matrix state
S_t; a convolution kernel K_l; a cumulative log-decay L_t) follow their papers and are not
sizes: a letter is a size when it appears in a shape tuple or in a definition such as
"K = d_key". Task-specific counts (a task's number of key-value pairs, digits, window) use
lower-case letters or names.
"""

import jax.numpy as jnp


def accumulation_dtype(dtype) -> jnp.dtype:
    """The dtype a recurrence state is carried in: at least float32 / complex64.

    Args:
      dtype: the input dtype (anything `jnp.dtype` accepts).

    Returns:
      The accumulation dtype: bf16 and fp16 inputs are accumulated in fp32; fp32 stays fp32;
      float64 (under `jax_enable_x64`) stays float64; complex inputs accumulate in complex64 or
      complex128.
    """
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return jnp.promote_types(dtype, jnp.complex64)
    return jnp.promote_types(dtype, jnp.float32)
