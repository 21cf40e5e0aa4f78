"""Every message and value type of the protocols, by name (for trace files and tools).

Collects the attrs classes that the protocol modules export in ``__all__``, named
``module.Class`` (``rmgr.GetTask``, ``linux.Exit``, ``task_server.Exit``), so the name
identifies a type in a trace file even where two protocols use the same word.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import attrs

import protocols

__all__ = ["message_types", "type_name"]


@cache
def message_types() -> dict[str, type]:
    """``module.Class`` -> attrs class, for every attrs class a ``protocols`` module exports."""
    found: dict[str, type] = {}
    for info in sorted(pkgutil.iter_modules(protocols.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"protocols.{info.name}")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and attrs.has(obj) and obj.__module__ == module.__name__:
                attrs.resolve_types(obj)
                found[f"{info.name}.{name}"] = obj
    return found


def type_name(obj: object) -> str:
    """The registry name of ``obj``'s type (``module.Class``)."""
    cls = type(obj)
    return f"{cls.__module__.removeprefix('protocols.')}.{cls.__name__}"
