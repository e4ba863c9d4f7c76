"""Train a cell on a task, evaluate it far past the training length, write the result.

    python -m seqbench.train --cell=lru --task=parity_check --train_length=40 --workdir=runs/x
    python -m seqbench.train --preset=smoke --workdir=runs/smoke      # under a minute on a CPU

The command line of `seqbench.engine` (see `seqbench/engine/__init__.py` for its modules).
"""

from seqbench.engine.cli import entry_point

if __name__ == "__main__":
    entry_point()
