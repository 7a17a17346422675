"""Your own images as a task (bioplaus_bench/folder.py): a generated folder of PNG and JPEG files, two classes,
and one odd file for each error."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from bioplaus_bench import folder as foldermod
from bioplaus_bench.cli import app
from bioplaus_bench.harness import RunSpec, resolve, train
from bioplaus_bench.registry import RegistryError, get_task

runner = CliRunner()
STANDIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg"


def make_folder(root: Path, n: int = 24, size: int = 32, mode: str = "RGB", test: bool = True) -> Path:
    """Two classes told apart by brightness: class 0 dark, class 1 bright; PNG and JPEG mixed."""
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", n // 2)) if test else (("train", n),):
        for k, name in enumerate(("dark", "bright")):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                base = 40 if k == 0 else 200
                shape = (size, size, 3) if mode == "RGB" else (size, size)
                a = np.clip(base + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
                Image.fromarray(a, mode).save(root / split / name / f"{i:03d}.{'png' if i % 2 else 'jpg'}")
    return root


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOPLAUS_FOLDER_CACHE", str(tmp_path / "cache"))
    foldermod.load_folder.cache_clear()
    foldermod.folder_task.cache_clear()


def test_a_folder_is_a_task_with_its_own_shape_statistics_and_split(tmp_path):
    root = make_folder(tmp_path / "imgs")
    task = get_task(f"folder:{root}")
    assert task.input_shape == (3, 32, 32) and task.num_classes == 2 and task.augment  # 32x32 colour: as CIFAR
    assert task.default_arch == "lenet" and "lenet" in task.archs
    x = foldermod.load_folder(str(root))["arrays"]["train_x"]
    assert x.shape == (48, 3, 32, 32) and x.dtype == np.uint8
    assert task.mean == pytest.approx(tuple(x.reshape(48, 3, -1).mean(axis=(0, 2)) / 255))  # from train/
    grey = get_task(f"folder:{make_folder(tmp_path / 'grey', size=28, mode='L', test=False)}")
    assert grey.input_shape == (1, 28, 28) and not grey.augment and grey.default_arch == "mlp"


def test_a_folder_run_learns_and_records_the_folders_manifest(tmp_path):
    root = make_folder(tmp_path / "imgs", n=64)
    rec = train(RunSpec(algo="bp", task=f"folder:{root}", arch="mlp", epochs=3, val_size=16, batch_size=16,
                        out=str(tmp_path / "runs"), progress=False))
    assert rec["status"] == "completed" and rec["final"]["val_acc"] >= 0.9 and rec["final"]["test_acc"] >= 0.9
    assert rec["config"]["folder_manifest"] == foldermod.load_folder(str(root))["manifest"]
    # another folder (one image changed): another configuration, never pooled with the first
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "train" / "dark" / "000.jpg")
    foldermod.load_folder.cache_clear()  # a process reads a folder once; a new process sees the change
    foldermod.folder_task.cache_clear()
    other = resolve(RunSpec(algo="bp", task=f"folder:{root}", arch="mlp", epochs=3, val_size=16, batch_size=16,
                            out=str(tmp_path / "runs")))
    assert other.config["folder_manifest"] != rec["config"]["folder_manifest"] and other.path.stem != rec["run_id"]


def test_without_test_the_test_metrics_are_none(tmp_path):
    root = make_folder(tmp_path / "imgs", test=False)
    rec = train(RunSpec(algo="bp", task=f"folder:{root}", arch="mlp", epochs=1, val_size=8, batch_size=8,
                        out=str(tmp_path / "runs"), progress=False))
    saved = json.loads(Path(tmp_path / "runs" / f"{rec['run_id']}.json").read_text())
    assert saved["final"]["test_acc"] is None and saved["final"]["val_acc"] is not None


def test_a_second_run_starts_from_the_cache(tmp_path):
    root = make_folder(tmp_path / "imgs", n=200)
    t0 = time.perf_counter()
    first = foldermod.load_folder(str(root))
    decode = time.perf_counter() - t0
    foldermod.load_folder.cache_clear()
    t0 = time.perf_counter()
    again = foldermod.load_folder(str(root))
    assert time.perf_counter() - t0 < decode and again["manifest"] == first["manifest"]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def _break(root: Path, how: str) -> str:
    if how == "empty class":
        for p in (root / "train" / "bright").iterdir():
            p.unlink()
        return "class folder"
    if how == "not an image":
        (root / "train" / "dark" / "notes.txt").write_text("x")
        return "notes.txt is not a PNG or JPEG image"
    if how == "unreadable image":
        (root / "train" / "dark" / "bad.png").write_bytes(b"\x89PNG not really")
        return "cannot read image"
    if how == "mixed sizes":
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "train" / "bright" / "small.png")
        return "small.png is 16x16 RGB, but"
    if how == "mixed modes":
        Image.fromarray(np.zeros((32, 32), np.uint8), "L").save(root / "train" / "bright" / "grey.png")
        return "grey.png is 32x32 L, but"
    if how == "no train/":
        (root / "train").rename(root / "training")
        return "has no train/ subfolder"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["empty class", "not an image", "unreadable image", "mixed sizes", "mixed modes",
                                 "no train/"])
def test_a_bad_folder_fails_in_one_line_naming_the_file(tmp_path, how):
    root = make_folder(tmp_path / "imgs", test=False)
    expected = _break(root, how)
    with pytest.raises(RegistryError, match=expected.replace(".", r"\.").replace("/", r"\/")):
        get_task(f"folder:{root}")
    r = runner.invoke(app, ["run", "--algo", "bp", "--task", f"folder:{root}", "--out", str(tmp_path / "runs")])
    lines = [ln for ln in r.output.splitlines() if ln.strip() and " INFO " not in ln]
    assert r.exit_code == 2 and len(lines) == 1 and expected in lines[0], r.output
    assert not (tmp_path / "runs").exists()  # before any work


@pytest.mark.slow
@pytest.mark.skipif(not (STANDIN / "train").is_dir(), reason="the CIFAR-10 JPEG stand-in is not here")
def test_bp_learns_natural_images_on_the_standin(tmp_path):
    """BP's Ernoult LeNet preset on the stand-in (a validation split of it; not CIFAR-10): 60 batches take
    validation accuracy well above chance (10%)."""
    rec = train(RunSpec(algo="bp", task=f"folder:{STANDIN}", preset="ernoult2022-lenet", epochs=1, max_batches=60,
                        out=str(tmp_path), progress=False, val_size=2000))
    assert rec["status"] == "completed" and rec["final"]["val_acc"] >= 0.25, rec["final"]


def test_a_folder_standing_in_for_cifar10_takes_each_rules_cifar10_configuration(tmp_path):
    """--defaults-from cifar10: the arch, epochs, batch and rule task defaults `bench run --task cifar10` resolves."""
    root = make_folder(tmp_path / "imgs")
    for algo in ("bp", "fa", "fw-dtp", "pepita"):
        cifar = resolve(RunSpec(algo=algo, task="cifar10"))
        stand_in = resolve(RunSpec(algo=algo, task=f"folder:{root}", defaults_from="cifar10"))
        same = ("arch", "epochs", "batch_size", "hparams")
        assert {k: stand_in.config[k] for k in same} == {k: cifar.config[k] for k in same}, algo
        assert stand_in.config["defaults_from"] == "cifar10" and "defaults_from" not in cifar.config
    with pytest.raises(RegistryError, match="--defaults-from mnist needs inputs of shape"):
        resolve(RunSpec(algo="bp", task=f"folder:{root}", defaults_from="mnist"))
