"""The feedback-training experiment of Ernoult et al. 2022: which Jacobian does each feedback loss learn?

Claim tested: trained with L-DRL's loss, the feedback Jacobian J_G of a layer approaches the transpose of the
forward Jacobian, J_F^T (the loss's expectation is sigma^2 (||J_G - J_F^T||^2 - ||J_F||^2)), while DTP's
reconstruction loss and DRL's difference reconstruction loss drive J_G towards an inverse of J_F.

Protocol (one record per loss and seed):
  * the suite's LeNet on real MNIST batches, forward weights at initialisation and never updated (torch's
    default init under the seed; the same network for every loss);
  * each rule's own feedback maps and feedback loss (``rule.feedback_loss``, the code the rule trains with):
    DTP, DRL, L-DRL with scalingDTP's noisy pooling indices and L-DRL with the clean ones;
  * every trainable feedback map (G of conv2+pool, fc1 and fc2; G of the first block is never used) takes one
    Adam step per iteration on a fresh training batch, forward order. One optimiser setting for every loss and
    layer: Adam is invariant to the losses' different scales (DRL divides by sigma^2, the others do not), so
    the curves compare what each loss converges to, not its step size. Noise sigma is the same everywhere;
  * every ``measure_every`` iterations, on a fixed batch of ``eval_size`` training samples and ``probes``
    Gaussian directions u per sample (own generator, so measuring never changes training):
      angle(J_G, J_F^T) = angle between the stacked J_G u and J_F^T u (an estimate of the Frobenius angle,
                          since E[<J_G u, J_F^T u>] = <J_G, J_F^T>_F),
      distance to J_F^T = ||J_G u - J_F^T u|| / ||J_F^T u||,
      inverse residual  = ||J_G J_F v - v|| / ||v|| for layers that expand (a left inverse exists), else
                          ||J_F J_G u - u|| / ||u|| (a right inverse exists): 0 when J_G is an inverse;
    and the angle between each forward weight tensor's BP gradient and the rule's update at beta (Ernoult
    Fig. 4.3's measure, ``measure.angles_to_bp``) for the four LeNet layers.

Deviations from Ernoult et al.'s Fig. 4.3 (``theorem_test.py``): MNIST instead of one CIFAR-10 batch (the CIFAR
files are not here), a fresh batch per iteration instead of one fixed batch, the LeNet with biases, one Adam
setting for all losses instead of each method's tuned SGD/Adam, and 2000 iterations per layer instead of 5000.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bioplaus_bench import records as recmod
from bioplaus_bench import targetprop as tp
from bioplaus_bench.data import Batches, data_root, load_splits
from bioplaus_bench.measure import angle_deg, angles_to_bp

log = logging.getLogger(__name__)
SCHEMA = 1  # version of this experiment's record layout
# loss label -> (rule whose feedback loss and maps are used, its settings besides the shared ones)
LOSSES: dict[str, tuple[str, dict[str, str]]] = {
    "DTP": ("dtp", {}),
    "DRL": ("drl", {}),
    "L-DRL": ("l-drl", {}),
    "L-DRL, clean pool indices": ("l-drl", {"noisy_pool_indices": "False"}),
}


@dataclass(frozen=True)
class Settings:
    """One experiment; a record holds these with its loss and seed."""

    task: str = "mnist"  # real batches of this task
    arch: str = "lenet"  # the frozen network
    iterations: int = 2000  # Adam steps per trainable feedback map
    batch_size: int = 32  # training batch per iteration
    noise: float = 0.1  # sigma of every loss's noise, every layer
    lr: float = 1e-3  # Adam learning rate, every loss and layer
    beta: float = 0.4655  # target step of the update whose angle to BP is measured (Ernoult Fig. 4.3)
    measure_every: int = 100  # iterations between measurements (and at 0 and the end)
    eval_size: int = 32  # fixed samples on which the Jacobians and the angle to BP are measured
    probes: int = 4  # Gaussian directions per sample for the Jacobian estimates


SMOKE = Settings(iterations=4, batch_size=8, measure_every=2, eval_size=4, probes=2)


def _rule(algo: str, extra: dict[str, str], s: Settings, seed: int) -> Any:
    from bioplaus_bench.config import resolve
    from bioplaus_bench.harness import create_rule, seed_everything
    from bioplaus_bench.registry import get_algorithm, get_arch, get_task

    seed_everything(seed)
    entry, task = get_algorithm(algo), get_task(s.task)
    # fb_lr 0: the rule's own feedback optimiser never moves G (this experiment steps G with Adam), so the
    # measuring copy's one feedback step changes nothing; one iteration keeps that copy cheap
    cfg, _ = resolve(entry, None, {"fb_iterations": "1", "fb_lr": "0", "fb_noise": str(s.noise),
                                   "beta": str(s.beta), **extra}, s.arch)
    model = get_arch(s.arch).build(task.input_shape, task.num_classes)
    return create_rule(entry, cfg, model, task, 1), task


def block_label(block: torch.nn.Module) -> str:
    """E.g. 'conv 32->64 +pool' or 'linear 512->10'."""
    parts = tp.parts_of(block)
    lin = next(m for m in parts if isinstance(m, torch.nn.Linear | torch.nn.Conv2d))
    kind = "conv" if isinstance(lin, torch.nn.Conv2d) else "linear"
    n_in, n_out = (lin.in_channels, lin.out_channels) if kind == "conv" else (lin.in_features, lin.out_features)
    return f"{kind} {n_in}->{n_out}" + (" +pool" if any(isinstance(m, torch.nn.MaxPool2d) for m in parts) else "")


def _jvp(fn, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.jvp(fn, x, v)[1]


def jacobian_agreement(block: torch.nn.Module, g: tp.FeedbackLayer, x: torch.Tensor, probes: int,
                       gen: torch.Generator) -> dict[str, float]:
    """Angle and relative distance between J_G (at y = F(x)) and J_F^T (at x), and the inverse residual."""
    xr = x.repeat(probes, *([1] * (x.dim() - 1))).requires_grad_(True)
    y, pools = tp.run_block(block, xr)
    u = torch.randn(y.shape, generator=gen)
    (jft_u,) = torch.autograd.grad(y, xr, u)  # J_F^T u
    y0, xr0 = y.detach(), xr.detach()
    g_of = lambda h: g.map(h, pools)  # noqa: E731 (G with the clean pass's pooling indices)
    f_of = lambda h: tp.run_block(block, h)[0]  # noqa: E731
    jg_u = _jvp(g_of, y0, u)  # J_G u
    if x[0].numel() <= y[0].numel():  # expanding layer: J_G J_F = I is reachable
        v = torch.randn(xr0.shape, generator=gen)
        res = _jvp(g_of, y0, _jvp(f_of, xr0, v)) - v
        rel = res.norm() / v.norm()
    else:  # compressing layer: J_F J_G = I is reachable
        res = _jvp(f_of, xr0, jg_u) - u
        rel = res.norm() / u.norm()
    return {"angle_T": angle_deg(jg_u, jft_u), "dist_T": float((jg_u - jft_u).norm() / jft_u.norm()),
            "inverse_residual": float(rel)}


def run_one(loss: str, seed: int, s: Settings, data_dir: str | None = None) -> dict[str, Any]:
    """Train the feedback maps of a frozen network with one loss; returns the record (curves per layer)."""
    algo, extra = LOSSES[loss]
    rule, task = _rule(algo, extra, s, seed)
    splits = load_splits(task, data_root(data_dir), 0, torch.device("cpu"))
    train = Batches(splits["train"], task, s.batch_size, train=True, generator=torch.Generator().manual_seed(seed))
    probe_gen = torch.Generator().manual_seed(10_000 + seed)
    x_eval, y_eval = next(iter(Batches(splits["train"], task, s.eval_size, train=False)))
    layers = [i for i, fb in enumerate(rule.feedback) if fb.opt is not None]
    opts = {i: torch.optim.Adam(rule.feedback[i].map.parameters(), lr=s.lr) for i in layers}
    names = [n for n, p in rule.model.named_parameters() if n.endswith("weight")]
    labels = [block_label(b) for b in rule.blocks]
    curves: dict[str, Any] = {"iteration": [], "angle_T": [], "dist_T": [], "inverse_residual": [], "loss": [],
                              "bp_angle": []}
    t0, it, last = time.perf_counter(), 0, [math.nan] * len(layers)
    batches = iter(train)
    while True:
        if it % s.measure_every == 0 or it == s.iterations:
            s_eval, _ = tp.clean_forward(rule.blocks, x_eval)
            m = [jacobian_agreement(rule.blocks[i], rule.feedback[i], s_eval[i], s.probes, probe_gen) for i in layers]
            for key in ("angle_T", "dist_T", "inverse_residual"):
                curves[key].append([d[key] for d in m])
            bp = angles_to_bp(rule, x_eval, y_eval)
            curves["bp_angle"].append([bp[n] for n in names])
            curves["iteration"].append(it)
            curves["loss"].append(last)
            log.info("%s seed %d it %d: angle(J_G, J_F^T) %s", loss, seed, it,
                     " ".join(f"{a:.1f}" for a in curves["angle_T"][-1]))
        if it == s.iterations:
            break
        try:
            xb, _ = next(batches)
        except StopIteration:
            batches = iter(train)
            xb, _ = next(batches)
        h, pools = tp.clean_forward(rule.blocks, xb)
        for k, i in enumerate(layers):  # forward order, as the rules train them
            opts[i].zero_grad()
            value = rule.feedback_loss(i, h, pools)
            value.backward()
            opts[i].step()
            last[k] = float(value.detach())
        it += 1
    files = {**recmod.code_files(type(rule)), __name__: recmod._sha(__file__)}
    return {
        "feedback_schema": SCHEMA, "kind": "feedback-training", "status": "completed",
        "config": {"loss": loss, "algo": algo, "seed": seed, "rule_settings": extra, **dataclasses.asdict(s)},
        "layers": [labels[i] for i in layers], "weights": [labels[int(n.split(".")[0])] for n in names],
        "code_hash": recmod.code_hash(files), "code_files": files, "env": recmod.environment(torch.device("cpu")),
        "load_avg_end": recmod.load_average(), "seconds": time.perf_counter() - t0, "curves": curves,
    }


def record_path(folder: Path, loss: str, seed: int, s: Settings) -> Path:
    cfg = {"loss": loss, "seed": seed, **dataclasses.asdict(s)}
    slug = loss.lower().replace(", ", "_").replace(" ", "-")
    return folder / f"{slug}__s{seed}__{recmod.config_hash(cfg)}.json"


def _run_and_write(path: Path, loss: str, seed: int, s: Settings, data_dir: str | None, threads: int) -> Path:
    torch.set_num_threads(threads)
    recmod.write_json_atomic(path, recmod.strict(run_one(loss, seed, s, data_dir)))
    return path


def run(folder: Path, s: Settings, seeds: tuple[int, ...], data_dir: str | None = None, workers: int = 1,
        render_only: bool = False) -> list[dict[str, Any]]:
    """Run every loss x seed whose completed record is not in ``folder`` yet (a finished record is never
    redone), ``workers`` at a time (one process each, the cores shared out); return the records there."""
    todo = [(loss, seed) for seed in seeds for loss in LOSSES
            if not render_only and not _completed(record_path(folder, loss, seed, s))]
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
        log.info("feedback training: %d runs of %d iterations (%d at a time) -> %s", len(todo), s.iterations,
                 workers, folder)
        threads = max(1, torch.get_num_threads() // max(1, workers))
        if workers <= 1:
            for loss, seed in todo:
                _run_and_write(record_path(folder, loss, seed, s), loss, seed, s, data_dir, threads)
        else:
            import concurrent.futures as cf
            import multiprocessing as mp

            with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                jobs = [pool.submit(_run_and_write, record_path(folder, loss, seed, s), loss, seed, s, data_dir,
                                    threads) for loss, seed in todo]
                for job in cf.as_completed(jobs):
                    log.info("feedback training: wrote %s", job.result())
    recs = [_completed(record_path(folder, loss, seed, s)) for seed in seeds for loss in LOSSES]
    return [r for r in recs if r is not None]


def _completed(path: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("status") == "completed" else None


FINGERPRINT_SETTINGS = {"iterations": 2, "measure_every": 1, "eval_size": 4, "probes": 1}


def fingerprint(rec: dict[str, Any], data_dir: str | None = None) -> dict[str, Any]:
    """The experiment's behavioural fingerprint (as ``bioplaus_bench.fingerprint`` for runs): ``run_one`` for the
    record's loss and seed with its settings cut to FINGERPRINT_SETTINGS (real batches, one thread)."""
    from bioplaus_bench import fingerprint as fpmod

    c = rec["config"]
    names = {f.name for f in dataclasses.fields(Settings)}
    s = Settings(**{**{k: v for k, v in c.items() if k in names}, **FINGERPRINT_SETTINGS})
    with fpmod._isolated():
        out = run_one(c["loss"], c["seed"], s, data_dir)
    return {"version": fpmod.VERSION, "curves": json.loads(json.dumps(recmod.strict(out["curves"])))}


def code_hash_now(rec: dict[str, Any]) -> str:
    """The code hash a record of this experiment for ``rec``'s rule would carry today."""
    from bioplaus_bench.registry import get_algorithm

    files = {**recmod.code_files(get_algorithm(rec["config"]["algo"]).cls), __name__: recmod._sha(__file__)}
    return recmod.code_hash(files)


def is_stale(rec: dict[str, Any]) -> bool:
    """Stale when today's code computes something else for the record: its code hash differs and its
    fingerprint (``fingerprint``) no longer holds."""
    from bioplaus_bench import fingerprint as fpmod

    code = code_hash_now(rec)
    if rec.get("code_hash") == code:
        return False
    stored = rec.get("fingerprint")
    if not isinstance(stored, dict) or stored.get("version") != fpmod.VERSION:
        return True
    now = fpmod.cached(code, "feedback-training", recmod.config_hash(rec["config"]), lambda: fingerprint(rec))
    return not fpmod._close(fpmod._nan(stored["curves"]), fpmod._nan(now["curves"]))


def summary(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per loss and layer (and per weight tensor for the angle to BP): the final values, mean ± std over seeds."""
    rows = []
    for loss in LOSSES:
        mine = [r for r in recs if r["config"]["loss"] == loss]
        if not mine:
            continue
        for key, names in (("angle_T", mine[0]["layers"]), ("dist_T", mine[0]["layers"]),
                           ("inverse_residual", mine[0]["layers"]), ("bp_angle", mine[0]["weights"])):
            first = np.array([r["curves"][key][0] for r in mine], dtype=float)
            final = np.array([r["curves"][key][-1] for r in mine], dtype=float)
            for k, name in enumerate(names):
                rows.append({"loss": loss, "measure": key, "layer": name, "n": len(mine),
                             "at init": float(first[:, k].mean()), "final": float(final[:, k].mean()),
                             "final std": float(final[:, k].std(ddof=1)) if len(mine) > 1 else math.nan,
                             "stale": sum(is_stale(r) for r in mine)})
    return rows
