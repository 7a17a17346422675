"""Your own images as a task: ``--task folder:PATH`` for a folder laid out as ``PATH/train/<class>/*`` (PNG or
JPEG, read with Pillow) and, optionally, ``PATH/test/<class>/*``.

Classes are the ``train/`` subfolders in sorted order. Every image must have the size and mode of the first
(one line naming the first that differs); an empty class, a file that is not an image and an unreadable image
are one-line errors naming the file, before any work. The images are decoded once and cached under
``~/.cache/bioplaus_bench/folders/`` by a manifest of every file's path, size and modification time, so a
second run starts without decoding (within one process a folder is read once); the record's config keeps the
hash of the files' contents (``folder_manifest``), so records from different folders, or from a folder whose
files changed, never pool.

Normalisation: per-channel mean and std of ``train/`` (which the validation split is carved from, with the
suite's fixed split seed). Augmentation: CIFAR's random crop and flip when the images are 32x32 colour.
Architectures: those of CIFAR-10 for 32x32 colour, of MNIST for 28x28 grey, the MLPs otherwise. Without
``test/`` there are no test metrics (they are recorded as none, never the validation set renamed).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from bioplaus_bench.data import DataError, TaskSpec

log = logging.getLogger(__name__)

PREFIX = "folder:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MODES = {"L": 1, "RGB": 3}  # Pillow mode -> channels
CACHE_VERSION = 2


def cache_dir() -> Path:
    return Path(os.environ.get("BIOPLAUS_FOLDER_CACHE") or Path.home() / ".cache" / "bioplaus_bench" / "folders")


def _scan(root: Path) -> dict[str, list[tuple[Path, int, int, int]]]:
    """{split: [(file, class index, size, mtime in ns)]} with the checks that need no decoding."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder; accepted: a folder with "
                        "train/<class>/ subfolders of PNG or JPEG images")
    if not (root / "train").is_dir():
        raise DataError(f"image folder {root} has no train/ subfolder; accepted: {root}/train/<class>/*.png|jpg "
                        f"(and optionally {root}/test/<class>/*)")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{root / 'train'} has {len(classes)} class folder(s); accepted: at least 2 "
                        "(train/<class>/ holds the images of one class)")
    out: dict[str, list[tuple[Path, int]]] = {}
    for split in ("train", "test"):
        base = root / split
        if not base.is_dir():
            continue
        extra = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name not in classes
                       and not p.name.startswith("."))
        if extra:
            raise DataError(f"{base} has class folder(s) {', '.join(extra)} that train/ does not; accepted: "
                            f"{', '.join(classes)}")
        files = []
        for k, name in enumerate(classes):
            folder = base / name
            if not folder.is_dir():
                continue
            with os.scandir(folder) as it:  # one stat per file, kept for the manifest
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
            for e in entries:
                if e.is_dir() or Path(e.name).suffix.lower() not in IMAGE_SUFFIXES:
                    raise DataError(f"{folder / e.name} is not a PNG or JPEG image; accepted in {folder}: *.png, "
                                    "*.jpg, *.jpeg (move other files out)")
            if not entries and split == "train":
                raise DataError(f"class folder {folder} is empty; accepted: at least one image per class")
            files += [(Path(e.path), k, (st := e.stat()).st_size, st.st_mtime_ns) for e in entries]
        out[split] = files
    return out


def _stat_manifest(files: dict[str, list[tuple[Path, int, int, int]]], root: Path) -> str:
    """A hash of every file's path, size and modification time: the cache key (cheap to recompute)."""
    h = hashlib.sha1(f"{CACHE_VERSION}".encode())
    for split, items in files.items():
        for p, k, size, mtime in items:
            h.update(f"{split}/{p.relative_to(root / split)}:{k}:{size}:{mtime}\n".encode())
    return h.hexdigest()[:16]


def _decode(files: dict[str, list[tuple[Path, int, int, int]]], root: Path) -> dict[str, Any]:
    """Decode every image (uint8, N x C x H x W) and hash the files' contents, checking sizes and modes."""
    from PIL import Image, UnidentifiedImageError

    content = hashlib.sha1()
    ref: tuple[tuple[int, int], str, Path] | None = None
    arrays: dict[str, Any] = {}
    for split, items in files.items():
        xs, ys = [], []
        for p, k, _, _ in items:
            raw = p.read_bytes()
            content.update(f"{split}/{p.relative_to(root / split)}:{k}:".encode() + hashlib.sha1(raw).digest())
            try:
                with Image.open(p) as im:
                    im.load()
                    size, mode = im.size, im.mode
                    a = np.asarray(im)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise DataError(f"cannot read image {p}: {type(exc).__name__}: {str(exc)[:80]}") from None
            if mode not in MODES:
                raise DataError(f"{p} has mode {mode}; accepted: {', '.join(MODES)} (convert it, e.g. to RGB)")
            if ref is None:
                ref = (size, mode, p)
            elif (size, mode) != ref[:2]:
                raise DataError(f"{p} is {size[0]}x{size[1]} {mode}, but {ref[2]} is {ref[0][0]}x{ref[0][1]} "
                                f"{ref[1]}; accepted: every image of one size and mode")
            xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            ys.append(k)
        arrays[f"{split}_x"] = np.stack(xs) if xs else np.zeros((0, 1, 1, 1), np.uint8)
        arrays[f"{split}_y"] = np.asarray(ys, dtype=np.int64)
    arrays["content"] = np.asarray(content.hexdigest()[:16])
    arrays["mean"], arrays["std"] = (np.asarray(v) for v in _channel_stats(arrays["train_x"]))
    return arrays


@functools.lru_cache(maxsize=4)
def load_folder(path: str) -> dict[str, Any]:
    """The folder's images and labels (from the cache when its manifest matches), its classes and hashes."""
    root = Path(path).expanduser()
    files = _scan(root)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    key = _stat_manifest(files, root)
    cached = cache_dir() / f"{key}.npz"
    arrays = None
    if cached.exists():
        try:
            with np.load(cached) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            log.warning("folder cache %s is unreadable (%s); decoding again", cached, exc)
    if arrays is None:
        n = sum(len(v) for v in files.values())
        log.info("decoding %d images of %s (once; cached as %s)", n, root, cached)
        arrays = _decode(files, root)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, cached)
    return {"arrays": arrays, "classes": classes, "manifest": str(arrays["content"]), "has_test": "test" in files}


def _channel_stats(x: np.ndarray, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images in [0, 1] (in chunks: no float copy of the whole set)."""
    s1 = np.zeros(x.shape[1])
    s2 = np.zeros(x.shape[1])
    for i in range(0, len(x), chunk):
        c = x[i:i + chunk].reshape(-1, x.shape[1], int(np.prod(x.shape[2:]))).astype(np.float64) / 255.0
        s1 += c.sum(axis=(0, 2))
        s2 += (c * c).sum(axis=(0, 2))
    n = len(x) * int(np.prod(x.shape[2:]))
    mean = s1 / n
    return tuple(float(v) for v in mean), tuple(float(max(v, 1e-8)) for v in np.sqrt(np.maximum(s2 / n - mean**2, 0)))


@functools.lru_cache(maxsize=8)
def folder_task(name: str) -> TaskSpec:
    """The TaskSpec of ``folder:PATH`` (scanning, checking and, the first time, decoding the folder)."""
    path = name[len(PREFIX):]
    if not path.strip():
        raise DataError(f"bad task {name!r}; accepted: folder:PATH with PATH/train/<class>/ image folders")
    data = load_folder(path)
    a = data["arrays"]
    x = a["train_x"]
    shape = tuple(int(v) for v in x.shape[1:])
    mean, std = (tuple(float(v) for v in a[k]) for k in ("mean", "std"))
    from bioplaus_bench.registry import get_task

    if shape == (3, 32, 32):
        archs, default, augment = get_task("cifar10").archs, "lenet", True
    elif shape == (1, 28, 28):
        archs, default, augment = get_task("mnist").archs, "mlp", False
    else:
        archs, default, augment = ("mlp", "mlp-1.1m", "mlp-6.3m"), "mlp", False

    def load(root: Path) -> dict[str, tuple]:  # the data root is not used: the folder is the data
        out = {"train": (a["train_x"], a["train_y"])}
        if data["has_test"]:
            out["test"] = (a["test_x"], a["test_y"])
        return out

    n = len(x)
    return TaskSpec(
        name=name, description=f"images in {path}: {len(data['classes'])} classes ({', '.join(data['classes'][:5])}"
        f"{', ...' if len(data['classes']) > 5 else ''}), {n} train" + (f", {len(a['test_x'])} test" if
                                                                       data["has_test"] else ", no test/"),
        load=load, input_shape=shape, num_classes=len(data["classes"]), default_arch=default, archs=tuple(archs),
        mean=mean, std=std, augment=augment, epochs=10, batch_size=128, val_size=min(5000, n // 10), n_train=n,
        manifest=data["manifest"],
    )
