"""A user's own cells and tasks, from the command line or from an installed package.

    python -m seqbench.train --user_module=my_cell.py --cell=my_cell ...     # a file
    python -m seqbench.train --user_module=my_package.cells --cell=my_cell   # a module

A user module is any Python file or importable module that registers cells or tasks when
imported (`seqbench.cells.register(name, factory)`, `seqbench.tasks.register(...)`; fairseq's
`--user-dir` convention). `seqbench.train` and `seqbench.sweep` import it before looking up any
name, and so does everything that reads the run's `Config.user_module` back.

A pip-installed package registers itself through the entry-point group `seqbench.plugins`:

    [project.entry-points."seqbench.plugins"]
    my_package = "my_package.seqbench_plugin"     # a module that registers on import

`load_entry_points()` imports every such module (the command lines call it first).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from types import ModuleType

GROUP = "seqbench.plugins"
_loaded: dict[str, ModuleType] = {}


def load_user_module(spec: str) -> ModuleType:
    """Imports `spec`, a `.py` file path or a dotted module name, once per process.

    Raises ValueError (one line) when it does not exist or fails to import."""
    if spec in _loaded:
        return _loaded[spec]
    try:
        if spec.endswith(".py") or os.sep in spec:
            if not os.path.isfile(spec):
                raise ValueError(f"--user_module: no such file {spec!r} (expected a .py file or "
                                 f"a dotted module name)")
            name = "seqbench_user_" + os.path.splitext(os.path.basename(spec))[0]
            module_spec = importlib.util.spec_from_file_location(name, os.path.abspath(spec))
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 -- a user's code: any error is reported in one line
        raise ValueError(f"--user_module {spec!r} failed to import: {type(e).__name__}: "
                         f"{e}") from None
    _loaded[spec] = module
    return module


def load_entry_points() -> list[str]:
    """Imports the module of every installed `seqbench.plugins` entry point; returns their
    names. A plugin that fails to import is one ValueError line naming it."""
    names = []
    for entry_point in entry_points():
        try:
            entry_point.load()
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"seqbench plugin {entry_point.name!r} ({entry_point.value}) failed "
                             f"to load: {type(e).__name__}: {e}") from None
        names.append(entry_point.name)
    return names


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of the group `seqbench.plugins`."""
    return list(importlib.metadata.entry_points(group=GROUP))
