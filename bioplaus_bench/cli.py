"""The ``bench`` command line (typer)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from bioplaus_bench import registry
from bioplaus_bench.data import DataError

app = typer.Typer(
    help="bioplaus-bench: biologically plausible learning rules on one harness.\n\n"
    "Start with `bench list`, then `bench run --algo bp --task mnist`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
log = logging.getLogger("bioplaus_bench")


def fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def interrupted(what: str) -> None:
    """Ctrl-C: one line saying what was kept and how to go on (exit 130, the shell's code for SIGINT)."""
    typer.echo(f"interrupted (Ctrl-C): {what}; finished records are kept", err=True)
    raise typer.Exit(130)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)


def options_from(cls: type, names: tuple[str, ...], into: str, rename: dict[str, str] | None = None):
    """Give a command one option per field ``names`` of the dataclass ``cls`` (help: the field's comment; shown
    default: the dataclass's). The command receives the options given on the command line as the dict ``into``;
    a field left out keeps the dataclass's default, or the study's or paper's value."""
    import functools
    import inspect
    import typing

    from bioplaus_bench.config import field_docs

    docs = {name: (default, meaning) for name, _tp, default, meaning in field_docs(cls)}
    hints = typing.get_type_hints(cls)

    def decorate(fn):
        sig = inspect.signature(fn)
        added, types = [], {}
        for name in names:
            base = next((a for a in typing.get_args(hints[name]) if a is not type(None)), hints[name])
            default, meaning = docs[name]
            flag = "--" + (rename or {}).get(name, name).replace("_", "-")
            decls = [f"{flag}/--no-{flag[2:]}"] if base is bool else [flag]
            types[f"{into}_{name}"] = base | None  # prefixed: a command may have an argument of the same name
            added.append(inspect.Parameter(f"{into}_{name}", inspect.Parameter.KEYWORD_ONLY, annotation=base | None,
                                           default=typer.Option(None, *decls, help=meaning,
                                                                show_default=False if default is None
                                                                else str(default))))

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            given = {name: kwargs.pop(f"{into}_{name}") for name in names}
            return fn(*args, **kwargs, **{into: {k: v for k, v in given.items() if v is not None}})

        params = [p for p in sig.parameters.values() if p.name != into]
        wrapper.__signature__ = sig.replace(parameters=params + added)
        wrapper.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != into} | types
        return wrapper

    return decorate


# Every RunSpec field a user sets is an option of run, grid, sensitivity and paper (algo, task, seed, the rule
# hyperparameters and --out are declared per command: lists on grids, one value on run)
RUN_OPTIONS = ("arch", "preset", "epochs", "batch_size", "val_size", "angle_every", "device", "data_dir",
               "max_batches", "augment", "compile", "defaults_from")
EXECUTOR_OPTIONS = ("name", "max_parallel", "cpus_per_task", "partition", "timeout_min", "gpus_per_node", "mem_gb",
                    "wait")


def run_options(fn):
    from bioplaus_bench.harness import RunSpec

    return options_from(RunSpec, RUN_OPTIONS, "run_fields")(fn)


def executor_options(fn):
    from bioplaus_bench.grid import ExecutorOptions

    return options_from(ExecutorOptions, EXECUTOR_OPTIONS, "executor_fields", {"name": "executor"})(fn)


@app.command("list")
def list_cmd() -> None:
    """List the registered learning rules (with presets), tasks and architectures."""
    try:
        registry.load_all()
    except registry.RegistryError as exc:
        fail(str(exc))
    typer.echo("Learning rules (--algo):")
    for name, e in sorted(registry.ALGORITHMS.items()):
        presets = f"  [presets: {', '.join(sorted(e.presets))}]" if e.presets else ""
        typer.echo(f"  {name:<10} {e.description}{presets}")
    typer.echo("\nTasks (--task):")
    for name, t in sorted(registry.TASKS.items()):
        typer.echo(f"  {name:<16} {t.description} (default arch: {t.default_arch})")
    typer.echo("\nArchitectures (--arch):")
    for name, a in sorted(registry.ARCHS.items()):
        only = f" [{', '.join(a.rules)} only]" if a.rules else ""
        typer.echo(f"  {name:<10} {a.description}{only}")


@app.command()
def show(
    name: str = typer.Argument(..., help="a rule (e.g. fw-dtp), a task (e.g. mnist) or an architecture (e.g. lenet)"),
) -> None:
    """Everything about a rule, task or architecture: a rule's paper, summary, every hyperparameter with its type,
    default and meaning, its presets and the architectures it accepts per task."""
    import inspect

    from bioplaus_bench.config import field_docs

    try:
        registry.load_all()
    except registry.RegistryError as exc:
        fail(str(exc))
    if name in registry.ALGORITHMS:
        e = registry.ALGORITHMS[name]
        doc = inspect.getdoc(inspect.getmodule(e.cls)) or ""
        typer.echo(f"{name}: {e.description}\n\n{doc.split(chr(10) + chr(10))[0]}\n")
        typer.echo(f"Hyperparameters (--set key=value, or --key value on `bench run`; file: "
                   f"{inspect.getsourcefile(e.cls)}):")
        rows = field_docs(e.config)
        w = max(len(r[0]) for r in rows)
        for field, tp, default, meaning in rows:
            typer.echo(f"  {field:<{w}}  {tp:<17} {default!s:<12} {meaning}")
        typer.echo("\nPresets (--preset):" + ("" if e.presets else " none"))
        for pname, values in sorted(e.presets.items()):
            typer.echo(f"  {pname}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        if e.arch_defaults:
            typer.echo("\nDefaults per architecture (replace the defaults above there; a preset or --set wins):")
            for aname, values in sorted(e.arch_defaults.items()):
                typer.echo(f"  {aname}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        typer.echo("\nArchitectures (--arch) per task, and the rule's run defaults there:")
        for tname, t in sorted(registry.TASKS.items()):
            ok = [a for a in t.archs if e.supports is None or e.supports(a)]
            own = e.task_defaults.get(tname, {})
            arch = own.get("arch", t.default_arch)
            extra = "".join(f", {k.replace('_', ' ')} {v}" for k, v in own.items() if k != "arch")
            typer.echo(f"  {tname:<16} {', '.join(ok) or '(none)'}"
                       + (f"  [default {arch}{extra}]" if arch in ok else ""))
    elif name in registry.TASKS:
        t = registry.TASKS[name]
        typer.echo(f"{name}: {t.description}\n")
        for k in ("input_shape", "num_classes", "loss", "default_arch", "archs", "epochs", "batch_size", "val_size",
                  "augment", "top5", "synthetic"):
            typer.echo(f"  {k:<13} {getattr(t, k)}")
        rules = [a for a, e in sorted(registry.ALGORITHMS.items()) if e.supports is None or e.supports(t.default_arch)]
        typer.echo(f"\nRules on its default architecture: {', '.join(rules)}")
    elif name in registry.ARCHS:
        a = registry.ARCHS[name]
        typer.echo(f"{name}: {a.description}\n\nParameters per task it fits:")
        for tname, t in sorted(registry.TASKS.items()):
            if name in t.archs:
                n = sum(p.numel() for p in a.build(t.input_shape, t.num_classes).parameters())
                typer.echo(f"  {tname:<16} {n:,}")
        rules = [r for r, e in sorted(registry.ALGORITHMS.items()) if e.supports is None or e.supports(name)]
        typer.echo(f"\nRules that accept it: {', '.join(rules)}")
    else:
        every = [*registry.ALGORITHMS, *registry.TASKS, *registry.ARCHS]
        fail(f"unknown rule, task or architecture {name!r}; see `bench list`{registry.suggest(name, every)}")


def _shorthands(args: list[str]) -> dict[str, str]:
    """`--lr 0.1` / `--lr=0.1` on `bench run`: shorthand for `--set lr=0.1` (the rule checks the key)."""
    out, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise registry.RegistryError(f"unexpected argument {arg!r}; hyperparameters go as --set key=value "
                                         "(or --key value)")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise registry.RegistryError(f"{arg} needs a value: {arg} VALUE (or --set {key}=VALUE)")
            value, i = args[i + 1], i + 1
        out[key.replace("-", "_")] = value
        i += 1
    return out


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@run_options
def run(
    ctx: typer.Context,
    algo: str = typer.Option(..., "--algo", "-a", help="rule name from `bench list`, or package.module:Class"),
    task: str = typer.Option(..., "--task", "-t", help="task name from `bench list`"),
    seed: int = typer.Option(0, help="seed for initialisation, shuffling, augmentation and noise"),
    set_: list[str] = typer.Option(None, "--set", help="rule hyperparameter override key=value (repeatable)"),
    out: Path = typer.Option(Path("runs"), help="folder for the run record (one JSON per run)"),
    force: bool = typer.Option(False, "--force", help="rerun a finished config; its old record is kept beside "
                               "the new one as <run id>.superseded-<time>.json"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
    run_fields: dict = None,
) -> None:
    """Train one rule on one task and write its run record (JSON) under --out.

    Rule hyperparameters: --set key=value, or the shorthand --key value (e.g. --lr 0.1); `bench show RULE` lists
    them. A config whose record is already finished is skipped (the line says where the record is); an unfinished
    one resumes from its last epoch checkpoint. A run whose loss explodes stops early as `diverged`."""
    from bioplaus_bench import config as cfgmod
    from bioplaus_bench.harness import RunLocked, RunSpec, resolve, train
    from bioplaus_bench.records import DiskFull

    _setup_logging(verbose)
    resolved = None
    try:
        spec = RunSpec(algo=algo, task=task, seed=seed, overrides={**cfgmod.parse_set(set_), **_shorthands(ctx.args)},
                       out=str(out), checkpoint=True, **run_fields)
        resolved = resolve(spec)
        rec = train(spec, resolved, force=force)
    except (registry.RegistryError, DataError, RunLocked, DiskFull) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted(f"the record {resolved.path} says interrupted; the same command resumes it from its last "
                    "epoch checkpoint" if resolved else "nothing was started")
    except Exception as exc:  # the failed record is already written by the harness
        fail(f"run failed: {type(exc).__name__}: {exc}" + (f" (record: {resolved.path})" if resolved else ""))
    where = f"{rec['config']['arch']}, seed {seed}"
    if rec.get("skipped"):
        typer.echo(f"{algo} on {task} ({where}) is already {rec['status']}: {resolved.path} "
                   "(--force reruns it and keeps this record)")
    elif rec["status"] == "diverged":
        typer.echo(f"{algo} on {task} ({where}) diverged: {rec['error']} -> {resolved.path}")
    elif rec["status"] == "collapsed":
        typer.echo(f"{algo} on {task} ({where}) {rec['error']} (excluded from leaderboards like a diverged run) "
                   f"-> {resolved.path}")
    else:
        f = rec["final"]
        loss = f.get("test_loss")
        test = "no test split" if loss is None or loss != loss else \
            f"test acc {_fmt(f['test_acc'])}, test loss {loss:.4g}"
        typer.echo(f"{algo} on {task} ({where}): {test}, best val {_fmt(f['best_val_acc'])}, epoch "
                   f"{f['epoch_seconds']:.2f}s -> {resolved.path}")


def _fmt(acc: float | None, what: str = "n/a (regression)") -> str:
    return what if acc is None or acc != acc else f"{acc:.4f}"


@app.command()
def leaderboard(
    runs: Path = typer.Option(Path("runs"), help="folder of run records (searched recursively)"),
    fmt: str = typer.Option("md", "--format", help="md | csv | latex"),
) -> None:
    """One row per configuration (records grouped by their config without the seed; configs of one rule are
    separate rows labelled by what differs): n, test accuracy mean ± std (n >= 2), epoch time and its ratio to
    BP, angle to BP, excluded runs (diverged, failed, generated data) and flags (stale code, timed under load);
    then the BP-normalised score's interquartile mean with a stratified-bootstrap 95% CI (n >= 2)."""
    from bioplaus_bench.report import leaderboard_text

    if fmt not in ("md", "csv", "latex"):
        fail(f"unknown format {fmt!r}; accepted: md, csv, latex")
    if not runs.exists():
        fail(f"runs folder {runs} does not exist")
    typer.echo(leaderboard_text(str(runs), fmt))


@app.command()
def plot(
    runs: Path = typer.Option(Path("runs"), help="folder of run records (searched recursively)"),
    out: Path = typer.Option(Path("figures"), help="folder for the PNG and PDF figures"),
) -> None:
    """Learning curves per rule, angle to BP per layer over epochs, epoch time per rule (log scale), and a
    sensitivity heatmap for every rule and task whose records vary in one or two hyperparameters."""
    from bioplaus_bench.plots import all_figures
    from bioplaus_bench.records import read_records

    _setup_logging(False)
    scan = read_records(runs)
    for path, why in scan.skipped:
        log.warning("skipped %s: %s", path, why)
    if not scan.records:
        fail(f"no run records under {runs}" + (f" ({len(scan.skipped)} unreadable files skipped)"
                                                if scan.skipped else ""))
    for p in all_figures(scan.records, out):
        typer.echo(str(p))


SHIBUYA_GRID = "--grid lr=0.1,0.2,0.4,0.8,1,2,4,8 --grid beta=0.001,0.002,0.004,0.008,0.01,0.02,0.04,0.08"


@app.command()
@run_options
@executor_options
def sensitivity(
    algo: str = typer.Option(..., "--algo", "-a", help="rule name"),
    task: str = typer.Option(..., "--task", "-t", help="task name"),
    grid: list[str] = typer.Option(..., "--grid", help="axis as key=v1,v2,... (one or two axes); Shibuya et al. "
                                   f"2023 varied the learning rate and the target step size: {SHIBUYA_GRID}"),
    seeds: str = typer.Option("0", help="comma-separated seeds per grid point"),
    set_: list[str] = typer.Option(None, "--set", help="fixed hyperparameter key=value (repeatable)"),
    out: Path = typer.Option(Path("runs/sensitivity"), help="folder for run records, report and figure"),
    run_fields: dict = None,
    executor_fields: dict = None,
) -> None:
    """Train a rule over a hyperparameter grid and report how sensitive it is. It is a grid (`bench grid`:
    same executors, finished points skipped, checkpoints, `bench status --out`) plus a report: the best point is
    chosen on validation accuracy and its test accuracy reported; spread and the fraction of points within 1
    point of the best are over validation accuracy; the heatmap shows mean test accuracy."""
    from bioplaus_bench import config as cfgmod
    from bioplaus_bench import grid as gridmod
    from bioplaus_bench.report import load_records, sensitivity_report

    _setup_logging(False)
    try:
        axes = {k: _csv(v) for k, v in cfgmod.parse_set(grid).items()}
        if not 1 <= len(axes) <= 2:
            raise registry.RegistryError(f"give one or two --grid axes, got {len(axes)}")
        if registry.get_task(task).loss != "ce":
            raise registry.RegistryError(f"sensitivity scores accuracy points; task {task!r} is a regression task")
        study = gridmod.Study(algos=[algo], tasks=[task], seeds=_ints(seeds, "seeds"), grid=axes,
                              run={**run_fields, "overrides": cfgmod.parse_set(set_), "out": str(out)})
        points, failed = _execute_grid(study, gridmod.ExecutorOptions(**executor_fields))
    except (registry.RegistryError, ValueError, DataError, gridmod.GridLocked) as exc:
        fail(str(exc))
    text, figs = sensitivity_report(load_records(out), {r.path.stem for r in points}, list(axes), out,
                                    f"sensitivity_{algo}_{task}")
    typer.echo(text)
    for p in figs:
        typer.echo(str(p))
    if failed:
        fail(failed)


def _ints(value: str | None, what: str) -> list[int]:
    try:
        return [int(x) for x in _csv(value)]
    except ValueError:
        raise registry.RegistryError(f"bad {what} {value!r}; accepted: comma-separated integers") from None


def _execute_grid(study, opts) -> tuple[list, str]:
    """Plan (every point resolved before any work), say what runs, execute, print the status table. Returns the
    points and, when points failed, the error line to end with (after the report)."""
    from bioplaus_bench import grid as gridmod

    specs = study.specs()
    if not specs:
        raise registry.RegistryError("the grid has no points (an empty list of rules, tasks, seeds or grid values); "
                                     "accepted: at least one of each")
    points, todo = gridmod.plan(specs)
    typer.echo(f"{len(points)} grid points in {study.out}: {len(points) - len(todo)} finished, {len(todo)} to run "
               f"({opts.name} executor)")
    try:
        result = gridmod.execute(points, todo, opts)
    except gridmod.GridLocked:
        raise
    except Exception as exc:  # e.g. no SLURM on this machine
        raise registry.RegistryError(f"{opts.name} executor failed: {type(exc).__name__}: "
                                     f"{str(exc).strip().splitlines()[-1:]}") from None
    _print_status(study.out)
    failed = [k for k, v in result.items() if v == "failed"]
    return points, (f"{len(failed)} of {len(result)} grid points failed: {', '.join(failed)} "
                    f"(see `bench status --out {study.out}`; re-run to retry them)" if failed else "")


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@run_options
@executor_options
def grid(
    ctx: typer.Context,
    algo: str = typer.Option(None, "--algo", "-a", help="comma-separated rules, e.g. bp,fa"),
    task: str = typer.Option(None, "--task", "-t", help="comma-separated tasks, e.g. mnist,fashion-mnist"),
    seeds: str = typer.Option(None, help="comma-separated seeds [default: 0]"),
    grid_: list[str] = typer.Option(None, "--grid", help="hyperparameter axis key=v1,v2,... (repeatable; "
                                    "the grid is their product)"),
    set_: list[str] = typer.Option(None, "--set", help="fixed hyperparameter key=value (repeatable)"),
    study: Path = typer.Option(None, help="study file (TOML) defining the grid; options given here override it"),
    out: Path = typer.Option(None, help="folder of the grid's records and checkpoints [default: runs/grid]"),
    run_fields: dict = None,
    executor_fields: dict = None,
) -> None:
    """Run a grid of rules x tasks x seeds x hyperparameter axes. One record per point, named by the hash of
    its config: re-running skips finished points and resumes failed or killed ones from their checkpoint.
    Every run option (--epochs, --device, --angle-every, ...) applies to every point; a fixed hyperparameter
    can also be given as --key value (shorthand for --set key=value)."""
    from bioplaus_bench import config as cfgmod
    from bioplaus_bench import grid as gridmod

    _setup_logging(False)
    try:
        if study is not None:
            st, ex = gridmod.load_study(study)
        elif algo and task:
            st, ex = gridmod.Study(algos=[], tasks=[]), {}
        else:
            raise registry.RegistryError("give --algo and --task (comma-separated lists), or --study FILE")
        for key, value in (("algos", _csv(algo)), ("tasks", _csv(task)), ("seeds", _ints(seeds, "seeds")),
                           ("grid", {k: _csv(v) for k, v in cfgmod.parse_set(grid_).items()})):
            if value:
                setattr(st, key, value)
        overrides = {**st.run.get("overrides", {}), **cfgmod.parse_set(set_), **_shorthands(ctx.args)}
        st.run = {**st.run, **run_fields, "overrides": overrides, **({"out": str(out)} if out else {})}
        if not st.algos or not st.tasks:
            raise registry.RegistryError("the grid needs at least one rule (--algo) and one task (--task)")
        opts = gridmod.ExecutorOptions(**{**ex, **executor_fields})
        _, failed = _execute_grid(st, opts)
    except (registry.RegistryError, ValueError, DataError, gridmod.GridLocked) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted(f"the running points stop and record why; the same command resumes them from their last epoch "
                    f"checkpoint (`bench status --out {st.out}` lists them)")
    if study is not None and st.report:
        from bioplaus_bench.report import write_study_report

        for p in write_study_report(st, study):
            typer.echo(str(p))
    if failed:
        fail(failed)


def _print_status(out: str | Path) -> dict[str, int]:
    import pandas as pd

    from bioplaus_bench import grid as gridmod
    from bioplaus_bench.report import markdown

    rows = gridmod.status(out)
    table = pd.DataFrame(rows).drop(columns=["run_id"])
    typer.echo(markdown(table))
    counts = {s: sum(r["state"] == s for r in rows)
              for s in ("done", "diverged", "collapsed", "running", "pending", "failed", "missing")}
    typer.echo(f"{len(rows)} points: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return counts


@app.command("status")
def status_cmd(
    out: Path = typer.Option(Path("runs/grid"), help="the grid's folder (its --out)"),
) -> None:
    """Show a grid: done (with test accuracy), running (epochs done), pending, failed (with the last line of
    its error) and missing points. Exits 1 when any point failed."""
    try:
        counts = _print_status(out)
    except registry.RegistryError as exc:
        fail(str(exc))
    if counts["failed"]:
        raise typer.Exit(1)


@app.command()
@run_options
@executor_options
def paper(
    name: str = typer.Argument(..., help="`list`, or a study: lillicrap2016 | shibuya2023 | ernoult2022"),
    budget: str = typer.Option("smoke", help="smoke (every cell, tiny budget, minutes; CIFAR/ImageNet32 on "
                               "generated stand-ins) | full (the paper's epochs and seeds; meant for a cluster) | "
                               "a study's own (figures only, fewer epochs; `bench paper list` names them)"),
    row: list[str] = typer.Option(None, "--row", help="run only cells of this table row, e.g. 'BP (0.5M)' "
                                  "(repeatable; the table still lists every cell)"),
    col: list[str] = typer.Option(None, "--col", help="run only cells of this column, e.g. MNIST (repeatable)"),
    render_only: bool = typer.Option(False, "--render-only", help="only rebuild the table and figures from the "
                                     "records already there"),
    out: Path = typer.Option(None, help="study folder [default: results/papers/<name>]"),
    run_fields: dict = None,
    executor_fields: dict = None,
) -> None:
    """Regenerate a paper's table (published beside measured, with the difference; markdown and LaTeX) and its
    figures. Every cell is a grid point: finished cells are skipped, failed ones rerun. A run option given here
    (--device, --angle-every, ...) applies to every cell; it changes the cells' records, so give it again with
    --render-only."""
    from bioplaus_bench import grid as gridmod
    from bioplaus_bench import papers

    _setup_logging(False)
    if name == "list":
        papers.load_all()
        for p in papers.PAPERS.values():
            n = sum(c.runnable for c in p.cells)
            which = "every cell" if p.budget_cells == "all" else "figure cells"
            own = "".join(f"; budget {b}: " + (f"{which} at <= {e} epochs, seed 0" if e else "its experiment")
                          for b, e in p.budgets.items())
            typer.echo(f"  {p.name:<14} {p.title} ({n} cells x {len(p.seeds)} seeds at the full budget{own})")
        return
    try:
        registry.load_all()
        study = papers.get_paper(name)
        folder = out or Path("results") / "papers" / name
        df, paths, result = papers.run(study, budget, folder, gridmod.ExecutorOptions(**executor_fields), run_fields,
                                       render_only, tuple(row or ()), tuple(col or ()))
    except (registry.RegistryError, ValueError, DataError, gridmod.GridLocked) as exc:
        fail(str(exc))
    from bioplaus_bench.report import markdown

    if not df.empty:  # a study's own budget renders figures only
        typer.echo(markdown(df))
    for p in paths:
        typer.echo(str(p))
    failed = [k for k, v in result.items() if v == "failed"]
    if failed:
        fail(f"{len(failed)} cells failed: {', '.join(failed)} (see `bench status --out {folder}/runs`)")


@app.command()
def claims(
    check: bool = typer.Option(False, "--check", help="recompute every claim from its records; exit 1 on any "
                               "mismatch, missing record or missing quote"),
    file: Path = typer.Option(Path("results/claims.toml"), help="the claims file"),
    out: Path = typer.Option(Path("results/CLAIMS.md"), help="the index to write (not with --check)"),
) -> None:
    """The claims index: every number the README, docstrings and tables quote, with the records behind it and
    the command that made them (results/claims.toml -> results/CLAIMS.md)."""
    from bioplaus_bench import claims as claimsmod

    _setup_logging(False)
    try:
        outcomes = claimsmod.check(Path("."), file)
    except registry.RegistryError as exc:
        fail(str(exc))
    bad = [o for o in outcomes if not o.ok]
    for o in outcomes:
        label = o.claim.quote or o.claim.table
        typer.echo(f"{'ok  ' if o.ok else 'FAIL'} {label:<12} {o.claim.what or o.claim.table}: {o.detail}")
    typer.echo(f"{len(outcomes) - len(bad)} of {len(outcomes)} claims hold")
    if check:
        if bad:
            raise typer.Exit(1)
        return
    out.write_text(claimsmod.markdown_index(outcomes))
    typer.echo(str(out))


@app.command()
def fingerprint(
    runs: Path = typer.Option(Path("results"), help="folder of run records (searched recursively)"),
    migrate: bool = typer.Option(False, "--migrate", help="give each record made by today's source (same code "
                                 "hash) that has no fingerprint the one today's code computes for it"),
    update: bool = typer.Option(False, "--update", help="write today's fingerprints of every record's config to "
                                "results/fingerprints.json (the committed cache that keeps checks fast in a clone)"),
) -> None:
    """Behavioural fingerprints: for every record, whether today's code computes what its code computed (a
    record is stale only when it does not; see bioplaus_bench/fingerprint.py for the protocol and tolerance)."""
    import json

    from bioplaus_bench import fingerprint as fpmod
    from bioplaus_bench.records import current_code_hash, fingerprint_holds, read_records, write_json_atomic

    _setup_logging(False)
    if not runs.exists():
        fail(f"runs folder {runs} does not exist")
    scan = read_records(runs)
    counts = {"same source": 0, "fingerprint holds": 0, "stale": 0, "migrated": 0}
    codes: set[str] = set()
    for rec in scan.records:
        code = current_code_hash(rec["config"]["algo"])
        if code:
            codes.add(code)
        if migrate and code and rec.get("code_hash") == code and "fingerprint" not in rec:
            path = Path(rec.pop("_path"))
            rec["fingerprint"] = fpmod.current(rec["config"], code)
            write_json_atomic(path, rec)
            counts["migrated"] += 1
        elif code and rec.get("code_hash") == code:
            counts["same source"] += 1
        elif fingerprint_holds(rec, code):
            counts["fingerprint holds"] += 1
        else:
            counts["stale"] += 1
            typer.echo(f"stale: {rec.get('_path')}")
        if update and code:
            fpmod.current(rec["config"], code)
    for path in sorted(runs.rglob("*.json")):  # the feedback-training experiment's records (not run records)
        from bioplaus_bench import feedback_training

        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("kind") == "feedback-training":
            stale = feedback_training.is_stale(rec)  # computes (and caches) today's fingerprint when needed
            counts["stale" if stale else "fingerprint holds"] += 1
            codes.add(feedback_training.code_hash_now(rec))
            if stale:
                typer.echo(f"stale: {path}")
    if update:
        typer.echo(str(fpmod.cache().save(fpmod.COMMITTED, only=codes)))
    typer.echo(f"{sum(counts.values())} records: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@app.command()
def rebuild(
    dry_run: bool = typer.Option(False, "--dry-run", help="only list each step with its finished and missing "
                                 "runs and an estimate of the time the missing ones take"),
    plan_file: Path = typer.Option(Path("results/rebuild.toml"), "--plan", help="the steps"),
    only: list[str] = typer.Option(None, "--only", help="run only the steps whose name contains this "
                                   "(repeatable)"),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="with --dry-run: estimate the time of every "
                                      "run, as if results/ were empty"),
    refresh_stale: bool = typer.Option(False, "--refresh-stale", help="rerun finished records that other code "
                                       "made (each is kept as <run id>.superseded-<time>.json)"),
    rerun: bool = typer.Option(False, "--rerun", help="rerun every finished record of the chosen steps in one "
                               "sitting, e.g. to retime a leaderboard timed on different days (each old one is "
                               "kept as <run id>.superseded-<time>.json)"),
) -> None:
    """Rebuild all of results/ from its committed study files, in the order of results/rebuild.toml: grids and
    paper studies (finished runs are skipped), their tables and figures, the benchmark, and the claims index."""
    from bioplaus_bench import rebuild as rebuildmod

    _setup_logging(False)
    try:
        steps = rebuildmod.load(plan_file)
        if only:
            steps = [s for s in steps if any(o in s.name for o in only)]
        for line in rebuildmod.describe(steps, from_scratch):
            typer.echo(line)
        if not dry_run:
            rebuildmod.execute(steps, refresh_stale, rerun)
    except (registry.RegistryError, ValueError, DataError) as exc:
        fail(str(exc))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
