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


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)


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
        typer.echo(f"  {name:<10} {a.description}")


@app.command()
def run(
    algo: str = typer.Option(..., "--algo", "-a", help="rule name from `bench list`, or package.module:Class"),
    task: str = typer.Option(..., "--task", "-t", help="task name from `bench list`"),
    arch: str = typer.Option(None, help="architecture (default: the preset's, else the task's)"),
    preset: str = typer.Option(None, help="named paper configuration of the rule (see `bench list`)"),
    epochs: int = typer.Option(None, help="epoch budget (default: preset, else task default)"),
    batch_size: int = typer.Option(None, help="training batch size (default: preset, else task default)"),
    seed: int = typer.Option(0, help="seed for initialisation, shuffling, augmentation and noise"),
    set_: list[str] = typer.Option(None, "--set", help="rule hyperparameter override key=value (repeatable)"),
    val_size: int = typer.Option(None, help="training samples held out for validation (0: none)"),
    angle_every: int = typer.Option(0, help="measure the angle to BP every K batches (0: off)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    data_dir: Path = typer.Option(None, help="data root (default: $BIOPLAUS_DATA, else ~/.cache/bioplaus_bench)"),
    out: Path = typer.Option(Path("runs"), help="folder for the run record (one JSON per run)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging"),
) -> None:
    """Train one rule on one task and write its run record (JSON) under --out."""
    from bioplaus_bench import config as cfgmod
    from bioplaus_bench.harness import RunSpec, resolve, train

    _setup_logging(verbose)
    try:
        spec = RunSpec(algo=algo, task=task, arch=arch, preset=preset, epochs=epochs, batch_size=batch_size,
                       seed=seed, overrides=cfgmod.parse_set(set_), val_size=val_size,
                       angle_every=angle_every, device=device, data_dir=str(data_dir) if data_dir else None,
                       out=str(out))
        resolved = resolve(spec)
        rec = train(spec, resolved)
    except (registry.RegistryError, DataError) as exc:
        fail(str(exc))
    except Exception as exc:  # the failed record is already written by the harness
        fail(f"run failed: {type(exc).__name__}: {exc} (record: {resolved.path})")
    f = rec["final"]
    typer.echo(f"{algo} on {task} ({rec['config']['arch']}, seed {seed}): test acc {f['test_acc']:.4f}, "
               f"best val {f['best_val_acc']:.4f}, epoch {f['epoch_seconds']:.2f}s -> {resolved.path}")


@app.command()
def leaderboard(
    runs: Path = typer.Option(Path("runs"), help="folder of run records (searched recursively)"),
    fmt: str = typer.Option("md", "--format", help="md | csv | latex"),
) -> None:
    """Rules x tasks: test accuracy mean ± std (n seeds), epoch time and its ratio to BP, angle to BP,
    and the BP-normalised score's interquartile mean with a stratified-bootstrap 95% CI."""
    from bioplaus_bench.report import leaderboard_text

    if fmt not in ("md", "csv", "latex"):
        fail(f"unknown format {fmt!r}; accepted: md, csv, latex")
    if not runs.exists():
        fail(f"runs folder {runs} does not exist")
    typer.echo(leaderboard_text(str(runs), fmt))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
