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
