"""Resolving a rule's hyperparameters: dataclass defaults <- preset <- ``--set key=value`` overrides.

Presets are plain dicts stored with the rule's registration. Their keys are fields of the rule's Config,
or one of ``RUN_KEYS`` (run-level settings a paper fixes, such as the batch size or epoch budget).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from pathlib import Path
from typing import Any

from bioplaus_bench.registry import AlgorithmEntry, RegistryError

# Run-level settings a preset may pin; explicit command-line flags still win.
RUN_KEYS = ("epochs", "batch_size", "arch", "val_size")


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing or malformed file is a one-line error naming it."""
    p = Path(path)
    if not p.exists():
        raise RegistryError(f"{what} {p} does not exist (paths are relative to the current folder)")
    try:
        return tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{what} {p} is not valid TOML: {exc}") from None


def check_keys(table: dict[str, Any], cls: type, where: str) -> None:
    """Keys of a TOML table against a dataclass's fields: one line naming the unknown and accepted ones."""
    names = sorted(f.name for f in dataclasses.fields(cls))
    bad = sorted(set(table) - set(names))
    if bad:
        raise RegistryError(f"unknown key(s) {', '.join(bad)} in {where}; accepted: {', '.join(names)}")


def parse_set(items: list[str] | None) -> dict[str, str]:
    """Parse ``["lr=0.1", "beta=0.5"]`` into a dict; a malformed item is a one-line error."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RegistryError(f"bad --set item {item!r}; expected key=value")
        out[key.strip()] = value.strip()
    return out


def _convert(value: Any, tp: Any, key: str) -> Any:
    if not isinstance(value, str):
        return tuple(value) if isinstance(value, list) else value
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            low = value.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return low in ("true", "1", "yes")
        if tp is int:
            return int(value)
        if tp is float:
            return float(value)
        if origin is tuple:
            (elem, *_rest) = typing.get_args(tp) or (float,)
            return tuple(_convert(v, elem, key) for v in value.strip("()[]").split(",") if v.strip())
        if origin is typing.Union or str(origin) == "types.UnionType":  # Optional[int] etc.
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if value.lower() == "none":
                return None
            return _convert(value, args[0], key)
    except ValueError:
        raise RegistryError(f"bad value {value!r} for {key} (expected {getattr(tp, '__name__', tp)})") from None
    return value


def build_config(config_cls: type, values: dict[str, Any], what: str) -> Any:
    """Instantiate ``config_cls`` from string or typed values; unknown keys fail naming the accepted ones."""
    hints = typing.get_type_hints(config_cls)
    names = [f.name for f in dataclasses.fields(config_cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        from bioplaus_bench.registry import suggest

        raise RegistryError(f"unknown hyperparameter {unknown[0]!r} for {what}; accepted: {', '.join(names)}"
                            f"{suggest(unknown[0], names)} (`bench show {what}` explains each)")
    typed = {k: _convert(v, hints[k], k) for k, v in values.items()}
    for k, v in typed.items():  # a NaN or infinite setting would only show up as a diverged run
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, float) and not math.isfinite(x):
                raise RegistryError(f"bad value {x!r} for {k} of {what}; accepted: a finite number")
    try:
        return config_cls(**typed)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"invalid hyperparameters for {what}: {exc}") from None


def preset_settings(entry: AlgorithmEntry, preset: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rule hyperparameters, run-level settings) of a named preset; empty for none."""
    values: dict[str, Any] = {}
    run: dict[str, Any] = {}
    if preset:
        if preset not in entry.presets:
            accepted = ", ".join(sorted(entry.presets)) or "none"
            raise RegistryError(f"unknown preset {preset!r} for {entry.name}; accepted: {accepted}")
        for k, v in entry.presets[preset].items():
            (run if k in RUN_KEYS else values)[k] = v
    return values, run


def resolve(entry: AlgorithmEntry, preset: str | None, overrides: dict[str, str],
            arch: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Return (rule config, run-level settings from the preset). Precedence, lowest first: the Config's
    defaults, the rule's defaults on the architecture (``arch`` if given, else the preset's), the preset, the
    overrides."""
    values, run = preset_settings(entry, preset)
    arch_values = entry.arch_defaults.get(arch or run.get("arch"), {})
    return build_config(entry.config, {**arch_values, **values, **overrides}, entry.name), run


def field_docs(config_cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, meaning) of every field of a rule's Config; the meaning is the field's comment in
    the source of the class that declares it (the rule file's one-comment-per-field convention)."""
    import inspect
    import re

    comments: dict[str, str] = {}
    for klass in reversed(config_cls.__mro__):  # subclasses' comments win
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$", src, re.M):
            comments[m.group(1)] = m.group(2).strip()
    hints = typing.get_type_hints(config_cls)
    out = []
    for f in dataclasses.fields(config_cls):
        tp = hints[f.name]
        name = getattr(tp, "__name__", None) if typing.get_origin(tp) is None else None
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:  # a required field
            default = None
        out.append((f.name, name or str(tp).replace("typing.", ""), default, comments.get(f.name, "")))
    return out
