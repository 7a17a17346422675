"""Generated stand-ins for datasets that are not on this machine, written in the exact official formats.

``bench paper ... --budget smoke`` uses them so that CI proves every study cell runs (CIFAR-10/100,
ImageNet32) without the real files. A data root holding generated files has a ``GENERATED.json`` marker
with the files' own MD5s: the loaders accept those MD5s there (and only there), and every record trained
on such a root says ``"data_generated": true``. No number from generated data is a result.
"""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np

from bioplaus_bench.data import md5sum

MARKER = "GENERATED.json"


def is_generated(root: Path) -> bool:
    return (Path(root) / MARKER).exists()


def generated_md5(root: Path, relpath: str) -> str | None:
    """The MD5 a generated file was written with, if ``root`` is a generated data root."""
    marker = Path(root) / MARKER
    if not marker.exists():
        return None
    return json.loads(marker.read_text())["md5"].get(relpath)


def _record(root: Path, path: Path) -> None:
    marker = root / MARKER
    meta = json.loads(marker.read_text()) if marker.exists() else {
        "note": "random bytes in the official formats, written by bioplaus_bench.generated; not real data",
        "md5": {}}
    meta["md5"][str(path.relative_to(root))] = md5sum(path)
    marker.write_text(json.dumps(meta, indent=1))


def write_cifar(root: Path, task: str, n_train: int = 200, seed: int = 0) -> Path:
    """A CIFAR-10 or CIFAR-100 python tarball (pickled dicts, N x 3072 uint8 CHW rows) under ``root``, with
    ``n_train`` training images spread over the official training members."""
    from bioplaus_bench.registry import load_all

    load_all()
    mod = __import__(f"bioplaus_bench.tasks.{task}", fromlist=["ARCHIVE"])
    subdir = "cifar-10" if task == "cifar10" else "cifar-100"
    label_key, classes = (b"labels", 10) if task == "cifar10" else (b"fine_labels", 100)
    path = Path(root) / subdir / mod.ARCHIVE
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as tar:
        for names in mod.MEMBERS.values():
            n_per_file = max(1, n_train // len(mod.MEMBERS["train"]))
            for name in names:
                d = {b"data": rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8),
                     label_key: rng.integers(0, classes, n_per_file).tolist(), b"batch_label": name.encode()}
                if task == "cifar100":
                    d[b"coarse_labels"] = (np.array(d[label_key]) // 5).tolist()
                blob = pickle.dumps(d, protocol=2)
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    _record(Path(root), path)
    return path


def write_imagenet32(root: Path, n_per_file: int = 40, seed: int = 0) -> Path:
    """The ImageNet32 npz batches (``data`` N x 3072 uint8, ``labels`` 1..1000) under ``root/imagenet32``."""
    folder = Path(root) / "imagenet32"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"train_data_batch_{i}.npz" for i in range(1, 11)] + ["val_data.npz"]:
        with open(folder / name, "wb") as f:
            np.savez(f, data=rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8),
                     labels=rng.integers(1, 1001, n_per_file), mean=np.zeros(3072))
        _record(Path(root), folder / name)
    return folder


def write(root: Path, task: str) -> None:
    if task in ("cifar10", "cifar100"):
        write_cifar(root, task)
    elif task == "imagenet32":
        write_imagenet32(root)
    else:
        raise ValueError(f"no generator for task {task!r}; accepted: cifar10, cifar100, imagenet32")
