import dataclasses

import pytest

from bioplaus_bench import registry
from bioplaus_bench.config import build_config, parse_set, resolve
from bioplaus_bench.harness import RunSpec
from bioplaus_bench.harness import resolve as resolve_run
from bioplaus_bench.registry import RegistryError


def test_builtins_are_registered():
    registry.load_all()
    assert {"bp", "fa", "dfa"} <= set(registry.ALGORITHMS)
    assert {"mnist", "fashion-mnist", "cifar10", "cifar100", "imagenet32", "teacher-student"} <= set(registry.TASKS)
    assert {"mlp", "lenet", "vgg6"} <= set(registry.ARCHS)


def test_duplicate_name_is_an_error():
    registry.load_all()

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        pass

    with pytest.raises(RegistryError, match="duplicate algorithm name 'bp'"):
        registry.register_algorithm("bp", Cfg)(type("Other", (), {}))


@pytest.mark.parametrize("kind,fn,name,accepted", [
    ("algorithm", registry.get_algorithm, "nope", "bp"),
    ("task", registry.get_task, "nope", "mnist"),
    ("architecture", registry.get_arch, "nope", "lenet"),
])
def test_unknown_names_list_accepted_values(kind, fn, name, accepted):
    with pytest.raises(RegistryError) as exc:
        fn(name)
    msg = str(exc.value)
    assert f"unknown {kind} 'nope'" in msg and accepted in msg and "\n" not in msg


def test_bad_hyperparameter_key_and_value():
    entry = registry.get_algorithm("fa")
    with pytest.raises(RegistryError, match=r"unknown hyperparameter 'lrr' for fa; accepted: optimizer, lr"):
        resolve(entry, None, {"lrr": "0.1"})
    with pytest.raises(RegistryError, match="bad value 'abc' for lr"):
        resolve(entry, None, {"lr": "abc"})
    with pytest.raises(RegistryError, match="invalid hyperparameters for fa: optimizer 'lbfgs'"):
        resolve(entry, None, {"optimizer": "lbfgs"})
    with pytest.raises(RegistryError, match="bad --set item 'lr'"):
        parse_set(["lr"])


def test_overrides_are_typed_and_presets_apply():
    entry = registry.get_algorithm("bp")
    cfg, run = resolve(entry, "ernoult2022-lenet", {"lr": "0.2"})
    assert cfg.lr == 0.2 and cfg.weight_decay == 1e-4 and cfg.scheduler == "cosine"
    assert run == {"epochs": 90, "batch_size": 128, "arch": "lenet"}
    with pytest.raises(RegistryError, match="unknown preset 'x' for bp; accepted: ernoult2022-lenet"):
        resolve(entry, "x", {})

    @dataclasses.dataclass(frozen=True)
    class C:
        sizes: tuple[int, ...] = (1,)
        flag: bool = False

    c = build_config(C, {"sizes": "3,4,5", "flag": "true"}, "c")
    assert c.sizes == (3, 4, 5) and c.flag is True


def test_run_resolution_checks_architecture_fit():
    with pytest.raises(RegistryError, match="architecture 'vgg6' does not fit task mnist; accepted: mlp"):
        resolve_run(RunSpec(algo="bp", task="mnist", arch="vgg6"))
    r = resolve_run(RunSpec(algo="bp", task="mnist"))
    assert r.config["arch"] == "mlp" and r.config["epochs"] == 3 and r.config["val_size"] == 5000


def test_arch_defaults_sit_between_the_config_and_the_preset():
    """A rule's per-architecture defaults replace its Config's on that network only; a preset and --set win."""
    registry.load_all()
    lenet = resolve_run(RunSpec(algo="l-drl", task="mnist", arch="lenet")).rule_cfg
    mlp = resolve_run(RunSpec(algo="l-drl", task="mnist", arch="mlp")).rule_cfg
    own = registry.get_algorithm("l-drl").arch_defaults["lenet"]
    assert lenet.fb_iterations == own["fb_iterations"] and lenet.lr == own["lr"]
    assert mlp.fb_iterations == (5,) and mlp.lr == 0.1  # the Config's own defaults
    preset = resolve_run(RunSpec(algo="l-drl", task="mnist", arch="lenet", preset="ernoult2022-lenet")).rule_cfg
    assert preset.lr == 0.03618
    forced = resolve_run(RunSpec(algo="l-drl", task="mnist", arch="lenet", overrides={"lr": "0.2"})).rule_cfg
    assert forced.lr == 0.2 and forced.fb_iterations == own["fb_iterations"]
    # the preset's architecture picks the defaults when the command names none
    cfg, run = resolve(registry.get_algorithm("l-drl"), "ernoult2022-lenet", {"lr": "0.2"})
    assert run["arch"] == "lenet" and cfg.fb_lr == own["fb_lr"]


def test_arch_defaults_with_an_unknown_key_fail_at_registration():
    @dataclasses.dataclass(frozen=True)
    class Cfg:
        lr: float = 0.1

    with pytest.raises(RegistryError, match="arch_defaults of 'x-rule' sets lrr; accepted: lr"):
        registry.register_algorithm("x-rule", Cfg, arch_defaults={"lenet": {"lrr": 0.1}})


registry.load_all()
ARCH_DEFAULTS = sorted((a, arch) for a, e in registry.ALGORITHMS.items() for arch in e.arch_defaults)


@pytest.mark.parametrize("algo,arch", ARCH_DEFAULTS)
def test_every_arch_default_builds_on_its_network(algo, arch):
    """Per-layer lists in an architecture's defaults fit that network (checked on the meta device, no data)."""
    task = next(t for t in sorted(registry.TASKS) if arch in registry.TASKS[t].archs)
    resolve_run(RunSpec(algo=algo, task=task, arch=arch))


def test_a_network_built_for_some_rules_refuses_every_other_rule_before_any_work():
    """``register_arch(..., rules=...)``: EqProp's energy network serves EqProp only; BP on it is a one-line error
    naming the architectures BP accepts there, and EqProp defaults to it on MNIST."""
    registry.load_all()
    assert registry.get_arch("eqprop-mlp").rules == ("eqprop",)
    with pytest.raises(RegistryError) as err:
        resolve_run(RunSpec(algo="bp", task="mnist", arch="eqprop-mlp"))
    msg = str(err.value)
    assert "\n" not in msg and "not defined on architecture 'eqprop-mlp'" in msg and "eqprop-mlp," not in msg
    assert resolve_run(RunSpec(algo="eqprop", task="mnist")).config["arch"] == "eqprop-mlp"
    assert registry.get_algorithm("bp").supports("mlp") and not registry.get_algorithm("bp").supports("ff-mlp")
