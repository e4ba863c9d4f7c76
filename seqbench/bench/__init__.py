"""Benchmarks (not library code): `python -m seqbench.bench.train` (training throughput per
cell, against Flax, seeds), `python -m seqbench.bench.data` (task sampling against a training
step), `python -m seqbench.bench.eval` (streaming evaluation's memory and speed)."""
