import torch

from bioplaus_bench import get_arch
from bioplaus_bench.nets import count_params


def test_paper_parameter_counts():
    # Shibuya et al. "0.5M" (784-256x5-10, no bias), "1.1M" and "6.3M" CIFAR MLPs; Ernoult et al. nets.
    assert count_params(get_arch("mlp").build((1, 28, 28), 10)) == 465_408
    assert count_params(get_arch("mlp-1.1m").build((3, 32, 32), 10)) == 1_051_136 + 65_536
    assert count_params(get_arch("mlp-6.3m").build((3, 32, 32), 10)) == 6_301_696
    assert count_params(get_arch("lenet").build((3, 32, 32), 10)) == 2_156_490
    assert abs(count_params(get_arch("vgg6").build((3, 32, 32), 10)) - 2.22e6) < 0.01e6


def test_blocks_produce_logits():
    for name, shape in (("lenet", (1, 28, 28)), ("lenet", (3, 32, 32)), ("vgg6", (3, 32, 32))):
        net = get_arch(name).build(shape, 10)
        assert net(torch.zeros(2, *shape)).shape == (2, 10)


def test_jaderbergs_fcn_is_linear_bn_relu_and_serves_bp_and_the_synthetic_gradient_rules_only():
    from torch import nn

    from bioplaus_bench import get_algorithm

    net = get_arch("fcn4").build((1, 28, 28), 10)
    hidden = [[type(m) for m in b if not isinstance(m, nn.Flatten)] for b in list(net)[:-1]]
    assert hidden == [[nn.Linear, nn.BatchNorm1d, nn.ReLU]] * 3 and [type(m) for m in net[-1]] == [nn.Linear]
    # 784*256 + 2*256*256 + 256*10 + 10 weights and biases, 3 x 2 x 256 BatchNorm affine parameters
    assert count_params(net) == 784 * 256 + 2 * 256 * 256 + 2570 + 1536
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert {a for a in ("bp", "dni", "cdni", "fa", "dtp", "l-drl") if get_algorithm(a).supports("fcn4")} == \
        {"bp", "dni", "cdni"}


def test_a_record_hashes_the_module_of_a_network_built_for_its_rule_outside_nets():
    """BP's records hash bioplaus_bench/fcn.py (its fcn4 lives there); FA, which cannot run on it, does not; a
    rule whose network is in its own file hashes that file anyway."""
    from bioplaus_bench import get_algorithm
    from bioplaus_bench.records import code_files

    assert "bioplaus_bench.fcn" in code_files(get_algorithm("bp").cls)
    assert "bioplaus_bench.fcn" in code_files(get_algorithm("cdni").cls)
    assert "bioplaus_bench.fcn" not in code_files(get_algorithm("fa").cls)
    assert "bioplaus_bench.algorithms.ff" in code_files(get_algorithm("ff").cls)
