"""seqbench: a JAX benchmark suite for sequence models (see README.md)."""

from seqbench import cells, logs, tasks

logs.configure()

__version__ = "0.1.0"

__all__ = ["cells", "tasks", "__version__"]
