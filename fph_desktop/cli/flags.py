"""Command-line flags generated from the config dataclasses, so a default, a range or a help text
lives in one place (the field) and the command line can never drift from it.

Each field's metadata may hold ``help``, ``choices``, ``minimum``/``maximum`` (checked by argparse,
so ``--image-size 0`` is refused before anything runs), ``metavar``, ``flag`` (the flag's name when
it differs from the field's), ``required``, and ``cli=False`` to keep a field off the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any


def bounded(kind: type, minimum=None, maximum=None, name: str = "value"):
    """An argparse type that parses ``kind`` and refuses values outside [minimum, maximum]."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, not {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = bounded(int, 1)
non_negative_int = bounded(int, 0)


def _scalar(type_text: str) -> type:
    for name, kind in (("int", int), ("float", float), ("str", str)):
        if type_text.startswith(name) or f"[{name}" in type_text:
            return kind
    return str


def add_config_flags(parser: argparse._ActionsContainer, cls: type, overrides: dict[str, dict] | None = None) -> list[str]:
    """One flag per field of ``cls`` (dest = the field's name); returns the field names added.

    ``overrides`` maps a field name to extra ``add_argument`` keywords (e.g. choices known only at
    run time, such as the backbone registry)."""
    overrides = overrides or {}
    added = []
    default_object = (
        cls()
        if all(
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING for f in dataclasses.fields(cls)
        )
        else None
    )
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        if not meta or meta.get("cli", True) is False or "help" not in meta:
            continue
        flag = "--" + meta.get("flag", f.name).replace("_", "-")
        default = getattr(default_object, f.name) if default_object is not None else f.default
        kwargs: dict[str, Any] = {"dest": f.name, "help": meta["help"]}
        type_text = str(f.type)
        if type_text == "bool":
            kwargs.update(action=argparse.BooleanOptionalAction, default=default)
        else:
            scalar = _scalar(type_text)
            if scalar in (int, float) and ("minimum" in meta or "maximum" in meta):
                kwargs["type"] = bounded(scalar, meta.get("minimum"), meta.get("maximum"))
            elif scalar is not str:
                kwargs["type"] = scalar
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
            if type_text.startswith("tuple"):
                kwargs["nargs"] = "+"
                default = list(default)
            if meta.get("required"):
                kwargs["required"] = True
            else:
                kwargs["default"] = default
                kwargs["help"] += f" (default: {' '.join(map(str, default)) if isinstance(default, list) else default})"
            if "metavar" in meta:
                kwargs["metavar"] = meta["metavar"]
        kwargs.update(overrides.get(f.name, {}))
        parser.add_argument(flag, **kwargs)
        added.append(f.name)
    return added


def config_from_args(cls: type, args: argparse.Namespace, **values):
    """``cls`` built from the parsed flags that belong to it, plus ``values``."""
    names = {f.name for f in dataclasses.fields(cls)}
    found = {name: getattr(args, name) for name in names if hasattr(args, name)}
    found.update(values)
    for f in dataclasses.fields(cls):
        if str(f.type).startswith("tuple") and isinstance(found.get(f.name), list):
            found[f.name] = tuple(found[f.name])
    return cls(**found)


def add_engine_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine", choices=("auto", "torch", "onnx"), default="auto",
        help="what runs the network: auto (ONNX Runtime on the CPU where installed and verified, else PyTorch), "
        "torch, or onnx (default: auto)",
    )  # fmt: skip
