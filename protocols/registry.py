"""Every message and value type of the protocols, by name (for trace files and tools).

Collects the attrs classes that the protocol modules export in ``__all__``.  Names are
unique across modules (asserted), so a class name identifies a type in a trace file.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import attrs

import protocols

__all__ = ["message_types"]


@cache
def message_types() -> dict[str, type]:
    """Name -> attrs class, for every attrs class exported by a ``protocols`` module."""
    found: dict[str, type] = {}
    for info in sorted(pkgutil.iter_modules(protocols.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"protocols.{info.name}")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and attrs.has(obj) and obj.__module__ == module.__name__:
                assert found.get(name, obj) is obj, f"two protocol types named {name}"
                attrs.resolve_types(obj)
                found[name] = obj
    return found
