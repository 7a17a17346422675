"""Datasets without torchvision: official files read directly, held in memory, batched on the device.

* Data root: ``--data-dir``, else ``$BIOPLAUS_DATA``, else ``$XDG_CACHE_HOME/bioplaus_bench`` (``~/.cache``).
  The layout is ``<root>/mnist/raw/*.gz``, ``<root>/fashion-mnist/raw/*.gz``, ``<root>/cifar-10/``,
  ``<root>/cifar-100/``, ``<root>/imagenet32/``.
* Every file is MD5-checked. A missing file is downloaded once from its official URL when the network
  allows, and only into the suite's own cache (never into a folder given by --data-dir or $BIOPLAUS_DATA);
  a mismatch is an error that names the file, never a re-download loop.
* A whole split lives in memory as a uint8 tensor; normalisation and augmentation (random crop with edge
  padding, horizontal flip) run on whole batches with a seeded generator.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import logging
import os
import pickle
import struct
import tarfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

ENV_DATA = "BIOPLAUS_DATA"
SPLIT_SEED = 20240  # the train/validation split is fixed, whatever the run's seed


class DataError(RuntimeError):
    """A data file is missing, corrupt or malformed; the message names the file and what to do."""


def default_root() -> Path:
    """The suite's own cache, the only folder it ever downloads into."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "bioplaus_bench"


def check_data_dir(data_dir: str | os.PathLike | None) -> None:
    """A data root the user named (--data-dir, else $BIOPLAUS_DATA) must be a readable folder: one line if not,
    before any work. An empty value is refused rather than read as "not given"."""
    for value, what in ((data_dir, "--data-dir"), (None if data_dir else os.environ.get(ENV_DATA), f"${ENV_DATA}")):
        if value is None:
            continue
        if not str(value).strip():
            raise DataError(f"bad {what} {str(value)!r}; accepted: a folder that holds the data (leave it out to "
                            f"use ${ENV_DATA}, else {default_root()})")
        path = Path(value).expanduser()
        if not path.exists():
            raise DataError(f"{what} {path} does not exist; accepted: a folder laid out as mnist/raw/*.gz, "
                            "fashion-mnist/raw/*.gz, ...")
        if not path.is_dir():
            raise DataError(f"{what} {path} is not a folder; accepted: a folder laid out as mnist/raw/*.gz, ...")
        if not os.access(path, os.R_OK | os.X_OK):
            raise DataError(f"{what} {path} is not readable by this user (permission denied)")


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA]).expanduser()
    return default_root()


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except PermissionError:
        raise DataError(f"cannot read data file {path}: permission denied for this user") from None
    return h.hexdigest()


def fetch(path: Path, md5: str | None, urls: tuple[str, ...] = ()) -> Path:
    """Return ``path`` after checking its MD5. A missing file is downloaded only into the suite's own cache
    (``default_root``): a folder the user named (--data-dir, $BIOPLAUS_DATA), often shared, is never written."""
    if not path.exists():
        if not urls or not path.resolve().is_relative_to(default_root().resolve()):
            where = f" (official: {urls[0]})" if urls else ""
            raise DataError(f"missing data file {path}{where}; place the official file there, or point "
                            f"--data-dir or ${ENV_DATA} at a folder that has it (unset both to download into "
                            f"{default_root()})")
        path.parent.mkdir(parents=True, exist_ok=True)
        errors = []
        for url in urls:
            part = path.with_name(path.name + ".part")
            try:
                log.info("downloading %s -> %s", url, path)
                with urllib.request.urlopen(url, timeout=30) as r, open(part, "wb") as f:
                    while chunk := r.read(1 << 20):
                        f.write(chunk)
                os.replace(part, path)
                break
            except OSError as exc:
                part.unlink(missing_ok=True)
                errors.append(f"{url}: {exc}")
        else:
            raise DataError(f"missing data file {path} and download failed ({'; '.join(errors)}); "
                            f"place the official file there, or pass --data-dir or set ${ENV_DATA}")
    if md5 is not None:
        got = md5sum(path)
        if got != md5:
            raise DataError(f"MD5 mismatch for {path}: got {got}, expected {md5}; "
                            "the file is corrupt or not the official one: delete it and retry")
    return path


# ---------------------------------------------------------------------------------------------- readers
def read_idx(path: Path) -> np.ndarray:
    """Read a gzip-compressed IDX file (MNIST format: big-endian magic, dims, then uint8 payload)."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc} (truncated or not gzip)") from None
    if len(raw) < 8:
        raise DataError(f"{path} is too short to be an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path} is not a uint8 IDX file (magic {raw[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    payload = raw[4 + 4 * ndim :]
    if len(payload) != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} but payload has {len(payload)} bytes (truncated?)")
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def read_cifar_tar(path: Path, members: dict[str, list[str]], label_key: bytes) -> dict[str, tuple]:
    """Read the official CIFAR python tarball: pickled dicts with b'data' (N x 3072 uint8, CHW planes)."""
    out: dict[str, tuple] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for split, names in members.items():
                xs, ys = [], []
                for name in names:
                    f = tar.extractfile(name)
                    if f is None:
                        raise DataError(f"{path} has no member {name}")
                    d = pickle.load(io.BytesIO(f.read()), encoding="bytes")
                    xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                    ys.append(np.asarray(d[label_key], dtype=np.int64))
                out[split] = (np.concatenate(xs), np.concatenate(ys))
    except (tarfile.TarError, EOFError, KeyError, pickle.UnpicklingError, OSError) as exc:
        raise DataError(f"cannot read CIFAR archive {path}: {exc!r}") from None
    return out


def read_npz_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read official downsampled-ImageNet npz batches: 'data' N x 3072 uint8 (CHW), 'labels' 1-based."""
    xs, ys = [], []
    for p in paths:
        try:
            with np.load(p) as d:
                xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(d["labels"], dtype=np.int64).reshape(-1) - 1)
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise DataError(f"cannot read ImageNet32 batch {p}: {exc!r}") from None
    return np.concatenate(xs), np.concatenate(ys)


# ---------------------------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class TaskSpec:
    """A benchmark task: where its data comes from and how it is fed to a network."""

    name: str
    description: str
    load: Callable[[Path], dict[str, tuple]]  # root -> {"train": (x, y), "test": (x, y)}
    input_shape: tuple[int, ...]  # (C, H, W) for images, (D,) for vectors
    num_classes: int  # output units (regression: output dimension)
    default_arch: str
    archs: tuple[str, ...]  # architectures that fit the input
    mean: tuple[float, ...] | None = None  # per-channel normalisation of x/255; None: x used as is
    std: tuple[float, ...] | None = None
    augment: bool = False  # random crop (pad 4, edge) + horizontal flip on training batches
    loss: str = "ce"  # "ce" (classification) or "mse" (regression)
    epochs: int = 10  # default epoch budget
    batch_size: int = 128
    val_size: int = 5000  # held out from train for model selection; 0 trains on all of it
    top5: bool = False  # also report top-5 accuracy
    synthetic: bool = False  # generated data: records say so and leaderboards keep it apart
    n_train: int | None = None  # training samples in the official files (checks --val-size before any work)
    manifest: str | None = None  # a folder task's content hash (folder.py): part of every record's config

    @property
    def chance(self) -> float:
        return 1.0 / self.num_classes if self.loss == "ce" else float("nan")


@dataclass
class Split:
    x: torch.Tensor  # uint8 images or float vectors, on the run's device
    y: torch.Tensor


@functools.lru_cache(maxsize=2)
def _load_raw(task: TaskSpec, root: Path) -> dict[str, tuple]:
    """The task's arrays, kept for the next run in this process (grids on the debug executor, tests).
    The MD5 checks run on the first load of a (task, root) pair."""
    return task.load(root)  # shared between runs: load_splits and Batches only ever copy from it


def load_splits(task: TaskSpec, root: Path, val_size: int, device: torch.device) -> dict[str, Split]:
    """Load train/val/test; the validation split is carved from train with a fixed permutation."""
    raw = _load_raw(task, Path(root))
    x, y = (torch.as_tensor(a) for a in raw["train"])
    splits = {"test": Split(*(torch.as_tensor(a).to(device) for a in raw["test"]))} if "test" in raw else {}
    if val_size > 0:
        if val_size >= len(x):
            raise DataError(f"val_size {val_size} is not smaller than the {len(x)} training samples")
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
        splits["val"] = Split(x[perm[:val_size]].to(device), y[perm[:val_size]].to(device))
        x, y = x[perm[val_size:]], y[perm[val_size:]]
    splits["train"] = Split(x.to(device), y.to(device))
    return splits


class Batches:
    """Iterate over a split in (optionally shuffled, augmented) normalised float batches."""

    def __init__(self, split: Split, task: TaskSpec, batch_size: int, train: bool,
                 generator: torch.Generator | None = None) -> None:
        self.split, self.task, self.batch_size, self.train = split, task, batch_size, train
        self.generator = generator
        dev = split.x.device
        if task.mean is not None:
            shape = (1, -1) + (1,) * (split.x.dim() - 2)
            self.mean = torch.tensor(task.mean, device=dev).view(shape)
            self.std = torch.tensor(task.std, device=dev).view(shape)

    def __len__(self) -> int:
        return -(-len(self.split.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.split.x)
        order = (torch.randperm(n, generator=self.generator).to(self.split.x.device)
                 if self.train and self.generator is not None else None)
        for i in range(0, n, self.batch_size):
            idx = order[i : i + self.batch_size] if order is not None else slice(i, i + self.batch_size)
            yield self.prepare(self.split.x[idx]), self.split.y[idx]

    def prepare(self, xb: torch.Tensor) -> torch.Tensor:
        if self.train and self.task.augment:
            xb = random_crop_flip(xb, 4, self.generator)
        if self.task.mean is None:
            return xb.float()
        return (xb.float().div_(255.0) - self.mean) / self.std


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator | None) -> torch.Tensor:
    """Per-sample random crop after edge padding by ``pad`` pixels, then a random horizontal flip."""
    b, _, h, w = x.shape
    xp = torch.nn.functional.pad(x.float(), (pad, pad, pad, pad), mode="replicate").to(x.dtype)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # (b, h)
    cols = dx[:, None] + torch.arange(w, device=x.device)  # (b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # reading columns backwards flips the image
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (b, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()


IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_loader(subdir: str, md5s: dict[str, str], mirrors: tuple[str, ...]
               ) -> Callable[[Path], dict[str, tuple]]:
    """Loader for an MNIST-format dataset in ``<root>/<subdir>/raw/`` (the torchvision layout)."""

    def load(root: Path) -> dict[str, tuple]:
        arrays = {}
        for name in IDX_FILES:
            path = fetch(root / subdir / "raw" / name, md5s[name], tuple(m + name for m in mirrors))
            arrays[name] = read_idx(path)
        xtr, ytr, xte, yte = (arrays[n] for n in IDX_FILES)
        for x, y in ((xtr, ytr), (xte, yte)):
            if len(x) != len(y):
                raise DataError(f"{root / subdir}: {len(x)} images but {len(y)} labels")
        return {"train": (xtr[:, None].copy(), ytr.astype(np.int64)),
                "test": (xte[:, None].copy(), yte.astype(np.int64))}

    return load


def cifar_loader(subdir: str, archive: str, md5: str, url: str, members: dict[str, list[str]],
                 label_key: bytes) -> Callable[..., dict[str, tuple]]:
    """Loader for an official CIFAR python tarball in ``<root>/<subdir>/``; ``md5`` may be overridden."""

    def load(root: Path, md5_override: str | None = None) -> dict[str, tuple]:
        from bioplaus_bench.generated import generated_md5

        # a generated data root (bench paper --budget smoke) lists its own files' MD5s
        md5_override = md5_override or generated_md5(root, f"{subdir}/{archive}")
        path = fetch(root / subdir / archive, md5_override or md5, (url,))
        return read_cifar_tar(path, members, label_key)

    return load
