"""The peer libraries that ``speed.py`` measures, loaded where they can be.

``make peers`` installs learn2learn 0.2.0 and higher 0.2.1 in ``.venv-peers``.
Run as a script, this module says what loads there (the check at the end of
``make peers``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import types
from pathlib import Path


def load_learn2learn_maml():
    """learn2learn's ``MAML`` class, or None with the reason when it cannot load.

    ``import learn2learn`` runs the package ``__init__``, which imports its vision,
    gym and data modules: torchvision, gym and others that ``make peers`` leaves
    out (see the Makefile), and even where they are installed torchvision's
    compiled extension, built for a CUDA torch, fails against the CPU torch
    pinned here; ``algorithms/__init__`` imports pytorch-lightning too.
    ``algorithms/maml.py`` needs none of that (only torch and
    ``learn2learn.utils``), so the two package modules are stood in for by empty
    ones that only know where their files are. The stand-ins stay in
    ``sys.modules``: in this process ``import learn2learn`` gives the empty one.
    """
    maml = sys.modules.get("learn2learn.algorithms.maml")
    if maml is None:
        spec = importlib.util.find_spec("learn2learn")
        if spec is None:
            return None, "not installed (run `make peers`)"
        root = Path(spec.submodule_search_locations[0])
        packages = {"learn2learn": root, "learn2learn.algorithms": root / "algorithms"}
        for name, path in packages.items():
            if name not in sys.modules:
                stub = types.ModuleType(name)
                stub.__path__ = [str(path)]
                sys.modules[name] = stub
        try:
            maml = importlib.import_module("learn2learn.algorithms.maml")
        except Exception as exc:  # report why, never fall back to something else
            return None, f"failed to load: {type(exc).__name__}: {exc}"
    return maml.MAML, f"learn2learn {importlib.metadata.version('learn2learn')}"


def load_higher():
    """The ``higher`` module, or None with the reason when it cannot load."""
    if importlib.util.find_spec("higher") is None:
        return None, "not installed (run `make peers`)"
    try:
        higher = importlib.import_module("higher")
    except Exception as exc:
        return None, f"failed to load: {type(exc).__name__}: {exc}"
    return higher, f"higher {importlib.metadata.version('higher')}"


if __name__ == "__main__":
    import torch

    results = [load_learn2learn_maml(), load_higher()]
    print(f"torch {torch.__version__}")
    for loaded, note in results:
        print(("ok: " if loaded is not None else "MISSING: ") + note)
    sys.exit(0 if all(loaded is not None for loaded, _ in results) else 1)
