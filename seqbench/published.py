"""Published scores the leaderboard shows beside ours, each with where it was read.

`CHOMSKY_TABLE2[task][model]`: Delétang et al. 2023 ("Neural Networks and the Chomsky
Hierarchy", ICLR 2023 / arXiv 2207.02098v3), Table 2, as a fraction: the best of 10 seeds x 3
learning rates of the mean accuracy over test lengths 41..500 (the Transformer column: the best
of five positional encodings). Models by the `chomsky` preset's labels: "elman" is the paper's
RNN, "lstm" its LSTM, "attention" its Transformer; "elman-bare" and "lstm-bare" (the paper's
exact RNN and LSTM at the CPU budget) and the "longer" variant's "<model>-<n>k" (trained n
thousand steps: "lstm-30k", "elman-bare-300k") are compared with the same numbers.

Only numbers read in a reprint found here are listed (2026-12-02): the Deltaformer paper's
Appendix D, "Table 5", reprints the rows of modular_arithmetic, parity_check,
stack_manipulation, reverse_string, duplicate_string and odds_first verbatim; a review note
gives the Transformer's 32.5 on modular_arithmetic_brackets. The other cells of Table 2 (even
pairs, cycle navigation and the rest) could not be read here and are left out rather than
quoted from memory (BUILD_NOTES, "chomsky at paper strength").
"""

from __future__ import annotations

import re

# Table 2's rows, in its order (regular, then deterministic context-free, then
# context-sensitive), by seqbench's task names.
CHOMSKY_TABLE2_ORDER = (
    "even_pairs", "modular_arithmetic", "parity_check", "cycle_navigation",
    "stack_manipulation", "reverse_string", "modular_arithmetic_brackets", "solve_equation",
    "duplicate_string", "missing_duplicate_string", "odds_first", "binary_addition",
    "binary_multiplication", "compute_sqrt", "bucket_sort",
)
CHOMSKY_TABLE2: dict[str, dict[str, float]] = {
    "modular_arithmetic": {"elman": 1.000, "lstm": 1.000, "attention": 0.242},
    "parity_check": {"elman": 1.000, "lstm": 1.000, "attention": 0.520},
    "stack_manipulation": {"elman": 0.560, "lstm": 0.591, "attention": 0.575},
    "reverse_string": {"elman": 0.620, "lstm": 0.609, "attention": 0.623},
    "modular_arithmetic_brackets": {"attention": 0.325},
    "duplicate_string": {"elman": 0.503, "lstm": 0.576, "attention": 0.528},
    "odds_first": {"elman": 0.510, "lstm": 0.556, "attention": 0.528},
}

# Table 2's models among the preset's labels, derived from the rows above in the order they list
# them (RNN, LSTM, Transformer): the overview shows them first, every other model after them.
CHOMSKY_TABLE2_MODELS = tuple(dict.fromkeys(m for row in CHOMSKY_TABLE2.values() for m in row))


def chomsky_score(task: str, model: str) -> float | None:
    """Table 2's score of `model` (a preset label: "X", "X-bare" and either with a step count
    "-<N>k" are the paper's model X) on `task`, or None where none was read."""
    paper_model = re.sub(r"-\d+k$", "", model).removesuffix("-bare")
    return CHOMSKY_TABLE2.get(task, {}).get(paper_model)
