"""Downsampled ImageNet 32x32 (Chrabaszcz et al. 2017): 1000 classes, ~1.28M train images, 50k val.

Read from the official npz batches in ``<root>/imagenet32/`` (``train_data_batch_1.npz`` ..
``train_data_batch_10.npz`` and ``val_data.npz``, as unpacked from Imagenet32_train_npz.zip and
Imagenet32_val_npz.zip). The official site needs a login, so there is no automatic download. Its MD5s
are not published either: the first successful read writes ``MD5SUMS`` beside the files and every later
read checks against it (trust on first use). The official val set is our test set; 50k training images
(50 per class on average, a fixed random draw) are held out for validation, as in Ernoult et al. 2022.
"""

from pathlib import Path

from bioplaus_bench.data import DataError, TaskSpec, fetch, md5sum, read_npz_batches
from bioplaus_bench.registry import register_task

TRAIN = [f"train_data_batch_{i}.npz" for i in range(1, 11)]
TEST = ["val_data.npz"]


def load(root: Path) -> dict[str, tuple]:
    folder = root / "imagenet32"
    manifest = folder / "MD5SUMS"
    known = {}
    if manifest.exists():
        known = dict(reversed(line.split()) for line in manifest.read_text().splitlines() if line.strip())
    paths = [fetch(folder / n, known.get(n)) for n in TRAIN + TEST]  # fetch checks the MD5 when known
    train = read_npz_batches(paths[: len(TRAIN)])
    test = read_npz_batches(paths[len(TRAIN):])
    if not known:
        manifest.write_text("".join(f"{md5sum(p)}  {p.name}\n" for p in paths))
    if train[1].min() < 0 or train[1].max() > 999:
        raise DataError(f"{folder}: labels outside 1..1000")
    return {"train": train, "test": test}


register_task(TaskSpec(
    name="imagenet32",
    description="ImageNet 32x32, 1000 classes, official npz batches; crop+flip; top-5 reported",
    load=load, input_shape=(3, 32, 32), num_classes=1000,
    default_arch="vgg6", archs=("vgg6", "lenet"),
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), augment=True,
    epochs=90, batch_size=256, val_size=50000, n_train=1281167, top5=True,
))
