"""Registries of learning rules, tasks and architectures.

Rules and tasks register themselves with a decorator when their module is imported. ``load_all`` imports
every module of ``bioplaus_bench.algorithms`` and ``bioplaus_bench.tasks`` and then the rules that other
packages declare in the entry-point group ``bioplaus_bench.algorithms`` ("ours": a rule registered from a
researcher's own package, with no edit to the suite). ``--algo package.module:Class`` loads a rule class
directly.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "bioplaus_bench.algorithms"


class RegistryError(ValueError):
    """A lookup or registration failed; the message is one line naming the accepted values."""


@dataclass(frozen=True)
class AlgorithmEntry:
    name: str
    cls: type
    config: type  # frozen dataclass of the rule's hyperparameters
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)  # paper configurations
    description: str = ""
    # Architectures the rule cannot train (e.g. a rule defined only for MLPs); checked before a run.
    supports: Callable[[str], bool] | None = None
    # Hyperparameters that make a step cheap for smoke budgets (e.g. one feedback iteration); applied on top of
    # a cell's settings by `bench paper --budget smoke`, never by a real run
    smoke: dict[str, Any] = field(default_factory=dict)
    # Run settings the rule needs on a task when neither the command nor a preset sets them, e.g.
    # {"cifar10": {"arch": "mlp-6.3m"}} for a rule defined on MLPs only; keys: arch, epochs, batch_size
    task_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Hyperparameters the rule uses on an architecture unless a preset or --set gives them: values tuned for
    # that network (e.g. the feedback lists of a conv net), where the Config's defaults are the MLP's
    arch_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # `supports` also refuses a network built for other rules only (ArchEntry.rules), so that every caller
        # (the harness's check, `bench show`, the contract tests) asks one predicate
        object.__setattr__(self, "supports", _supported_by(self.name, self.supports))


@dataclass(frozen=True)
class ArchEntry:
    name: str
    build: Callable[..., Any]  # (input_shape, num_classes) -> the network (an nn.Sequential of blocks)
    description: str = ""
    # The only rules this network serves (e.g. EqProp's energy network, whose forward pass is a relaxation);
    # None: every rule that supports it
    rules: tuple[str, ...] | None = None


def _supported_by(rule: str, own: Callable[[str], bool] | None) -> Callable[[str], bool]:
    def supports(arch: str) -> bool:
        entry = ARCHS.get(arch)
        if entry is not None and entry.rules is not None and rule not in entry.rules:
            return False
        return own is None or own(arch)

    return supports


ALGORITHMS: dict[str, AlgorithmEntry] = {}
TASKS: dict[str, Any] = {}  # name -> TaskSpec (see bioplaus_bench.data)
ARCHS: dict[str, ArchEntry] = {}


ALIASES = {"learning_rate": "lr", "learningrate": "lr", "wd": "weight_decay", "fmnist": "fashion-mnist",
           "f-mnist": "fashion-mnist"}  # names researchers type for the suite's own


def suggest(name: str, choices: Any) -> str:
    """'; did you mean 'x'?' for the closest accepted names (spelling without - and _, prefixes, near misses)."""
    import difflib

    norm = {c: c.lower().replace("-", "").replace("_", "") for c in choices}
    key = ALIASES.get(name.lower(), name).lower().replace("-", "").replace("_", "")
    hits = [c for c, n in norm.items() if n == key] or [c for c, n in norm.items() if key and n.startswith(key)]
    if not hits:
        close = difflib.get_close_matches(key, list(norm.values()), n=3, cutoff=0.6)
        hits = [c for c, n in norm.items() if n in close]
    return f"; did you mean {' or '.join(repr(h) for h in sorted(hits)[:3])}?" if hits else ""


def _first_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def register_algorithm(
    name: str,
    config: type,
    presets: dict[str, dict[str, Any]] | None = None,
    description: str | None = None,
    supports: Callable[[str], bool] | None = None,
    smoke: dict[str, Any] | None = None,
    task_defaults: dict[str, dict[str, Any]] | None = None,
    arch_defaults: dict[str, dict[str, Any]] | None = None,
) -> Callable[[type], type]:
    """Class decorator: register a learning rule under ``name``. A duplicate name is an error. ``smoke``: the
    rule's own cheap settings for smoke budgets (keys of its Config). ``task_defaults``: per task name, the run
    settings (arch, epochs, batch_size) the rule uses there unless the command or a preset sets them.
    ``arch_defaults``: per architecture, hyperparameters (keys of its Config) that replace the Config's defaults
    there; a preset and --set still win."""
    bad = sorted({k for d in (task_defaults or {}).values() for k in d} - {"arch", "epochs", "batch_size"})
    if bad:
        raise RegistryError(f"task_defaults of {name!r} sets {', '.join(bad)}; accepted: arch, epochs, batch_size")
    if not dataclasses.is_dataclass(config):
        raise RegistryError(f"config of algorithm {name!r} must be a dataclass, got {config!r}")
    fields = {f.name for f in dataclasses.fields(config)}
    bad = sorted({k for d in (arch_defaults or {}).values() for k in d} - fields)
    if bad:
        raise RegistryError(f"arch_defaults of {name!r} sets {', '.join(bad)}; accepted: {', '.join(sorted(fields))}")

    def deco(cls: type) -> type:
        add_entry(ALGORITHMS, "algorithm", name,
             AlgorithmEntry(name, cls, config, dict(presets or {}), description or _first_line(cls),
                            supports, dict(smoke or {}), dict(task_defaults or {}), dict(arch_defaults or {})))
        return cls

    return deco


def register_task(spec: Any) -> Any:
    """Register a ``TaskSpec`` instance (tasks are data, not classes). A duplicate name is an error."""
    add_entry(TASKS, "task", spec.name, spec)
    return spec


def register_arch(name: str, description: str | None = None, rules: tuple[str, ...] | None = None
                  ) -> Callable[[Callable], Callable]:
    """Function decorator: register an architecture builder ``(input_shape, num_classes) -> blocks``. ``rules``:
    the only rules the network serves (a rule family's own network, e.g. Forward-Forward's goodness network);
    every other rule is refused on it before any work."""

    def deco(fn: Callable) -> Callable:
        add_entry(ARCHS, "architecture", name,
                  ArchEntry(name, fn, description or _first_line(fn), tuple(rules) if rules else None))
        return fn

    return deco


def add_entry(table: dict, kind: str, name: str, entry: Any) -> None:
    """Put ``entry`` under ``name``; a name already taken is an error naming who took it."""
    if name in table:
        old = table[name]
        where = getattr(getattr(old, "cls", None), "__module__", None) or getattr(old, "__module__", "?")
        raise RegistryError(f"duplicate {kind} name {name!r} (already registered by {where})")
    table[name] = entry


_loaded = False


def load_all() -> None:
    """Import every built-in rule, task and architecture, then external entry-point rules (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("bioplaus_bench.nets")
    importlib.import_module("bioplaus_bench.fcn")  # Jaderberg et al.'s networks, for BP and DNI only
    for pkg_name in ("bioplaus_bench.algorithms", "bioplaus_bench.tasks"):
        try:
            pkg = importlib.import_module(pkg_name)
        except ModuleNotFoundError as exc:  # pragma: no cover - a broken install
            raise RegistryError(
                f"cannot import {pkg_name} ({exc}); install the suite with `pip install -e .` "
                "and do not run python from a folder that shadows it"
            ) from exc
        for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()  # importing the module runs its @register_algorithm
        except RegistryError:
            raise
        except Exception as exc:
            log.warning("could not load external rule %r from %s: %s", ep.name, ep.value, exc)


def get_algorithm(name: str) -> AlgorithmEntry:
    """Look a rule up by registry name, or load ``package.module:Class`` (registering it if needed)."""
    load_all()
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    if ":" in name:
        mod_name, _, attr = name.partition(":")
        if not mod_name.strip() or not attr.strip():
            raise RegistryError(f"bad rule path {name!r}; accepted: a registered name "
                                f"({', '.join(sorted(ALGORITHMS))}) or package.module:Class")
        import os
        import sys

        if os.getcwd() not in sys.path and "" not in sys.path:  # `bench` scripts do not search the current folder
            sys.path.insert(0, os.getcwd())
        try:
            obj = getattr(importlib.import_module(mod_name), attr)
        except Exception as exc:  # any import failure of the user's module is their one-line error
            raise RegistryError(f"cannot load rule {name!r}: {type(exc).__name__}: {exc}") from None
        for entry in ALGORITHMS.values():  # the import may have registered it under its own name
            if entry.cls is obj:
                return entry
        config = getattr(obj, "Config", None)
        if config is None or not dataclasses.is_dataclass(config):
            raise RegistryError(f"rule {name!r} is not registered and has no dataclass attribute `Config`")
        return AlgorithmEntry(name, obj, config, {}, _first_line(obj))
    raise RegistryError(f"unknown algorithm {name!r}; accepted: {', '.join(sorted(ALGORITHMS))} "
                        f"(or package.module:Class){suggest(name, ALGORITHMS)}")


def get_task(name: str) -> Any:
    """A registered task by name, or ``folder:PATH`` (your own images: bioplaus_bench/folder.py)."""
    load_all()
    if name.startswith("folder:"):
        from bioplaus_bench.data import DataError
        from bioplaus_bench.folder import folder_task

        try:
            return folder_task(name)
        except DataError as exc:
            raise RegistryError(str(exc)) from None
    if name not in TASKS:
        raise RegistryError(f"unknown task {name!r}; accepted: {', '.join(sorted(TASKS))}{suggest(name, TASKS)}")
    return TASKS[name]


def get_arch(name: str) -> ArchEntry:
    load_all()
    if name not in ARCHS:
        raise RegistryError(f"unknown architecture {name!r}; accepted: {', '.join(sorted(ARCHS))}"
                            f"{suggest(name, ARCHS)}")
    return ARCHS[name]
