"""References to module-level objects: ``package.module:attr`` or ``path/to/file.py:attr``.

How a stored run finds its workflow's code again, and how ``--app`` options load an app. As
uvicorn and celery do, the current directory is where a module is looked for first (a console
script such as ``tether`` does not put it on ``sys.path``, so ``tether worker --app
myapp:workflows`` beside ``myapp.py`` found no ``myapp``), and a file's own directory comes
before it, as for ``python path/to/file.py`` (its sibling modules import).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from tether.core.errors import ConfigurationError


def find_ref(obj: Any, module: str | None) -> str | None:
    """``module:attr`` of a module-level object, or None if it is not one."""
    if module is None:
        return None
    mod = sys.modules.get(module)
    if mod is None:
        return None
    for name, value in vars(mod).items():
        if value is obj and not name.startswith("_"):
            if module == "__main__" or module.startswith(_FILE_MODULE_PREFIX):
                # not importable by name from another process: point at the file instead
                path = getattr(mod, "__file__", None)
                return f"{Path(path).resolve()}:{name}" if path else None
            return f"{module}:{name}"
    return None


_FILE_MODULE_PREFIX = "tether_app_"


def load_ref(ref: str) -> Any:
    """Import ``package.module:attr`` or ``/path/to/file.py:attr``."""
    mod_name, sep, attr = ref.rpartition(":")
    if not sep or not mod_name or not attr:
        raise ConfigurationError(
            f"bad app reference {ref!r}; use 'package.module:name' or 'path/to/file.py:name'"
        )
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            if not path.exists():
                raise ConfigurationError(f"app file {mod_name!r} does not exist")
            _importable_from(path.resolve().parent, Path.cwd())
            name = f"{_FILE_MODULE_PREFIX}{path.stem}"
            loaded = sys.modules.get(name)
            if loaded is not None and _same_file(getattr(loaded, "__file__", None), path):
                module = loaded  # --app and --deps from one file: one module, run once
            else:
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is None or spec.loader is None:
                    raise ConfigurationError(f"cannot load {mod_name!r} as a Python module")
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:  # not kept half-run: the next load runs it again
                    sys.modules.pop(spec.name, None)
                    raise
        else:
            _importable_from(Path.cwd())
            module = importlib.import_module(mod_name)
    except ConfigurationError:
        raise
    except Exception as exc:
        hint = ""
        if isinstance(exc, RuntimeError) and "running event loop" in str(exc):
            hint = (
                " (the module runs a program when imported: put its asyncio.run(...) under "
                '`if __name__ == "__main__":` so that importing it only defines the workflow)'
            )
        raise ConfigurationError(
            f"cannot import {mod_name!r} for app {ref!r}: {exc}{hint}"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"{mod_name!r} has no attribute {attr!r} (app {ref!r})") from None


def _importable_from(*dirs: Path) -> None:
    """Put ``dirs`` first on ``sys.path``, in order, unless they are on it already (the empty
    entry a ``python -c`` or an interactive session puts there stands for the current one)."""
    cwd = Path.cwd()
    on_path = {Path(p).resolve() if p else cwd for p in sys.path}
    for d in reversed([d for d in dirs if d.resolve() not in on_path]):
        sys.path.insert(0, str(d))


def _same_file(loaded: str | None, path: Path) -> bool:
    return loaded is not None and Path(loaded).resolve() == path.resolve()
