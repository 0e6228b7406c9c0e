"""Lazy package exports: a package lists which module holds each name, and a name is imported on
first use, so importing the package (e.g. ``fph_desktop.model`` for its torch-free config) does not
load the heavy modules (PyTorch) of the names not used."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]], namespace: dict):
    """``(__getattr__, __dir__, names)`` for the package ``package`` whose globals are ``namespace``."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):  # noqa: N807 - the module-level hook's name
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{where[name]}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__, sorted(where)
