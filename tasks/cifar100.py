"""CIFAR-100 (Krizhevsky 2009): 32x32 colour images, 100 fine classes, 50k train (45k/5k) + 10k test."""

from bioplaus_bench.data import TaskSpec, cifar_loader
from bioplaus_bench.registry import register_task

ARCHIVE = "cifar-100-python.tar.gz"
MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
MEMBERS = {"train": ["cifar-100-python/train"], "test": ["cifar-100-python/test"]}

load = cifar_loader("cifar-100", ARCHIVE, MD5, URL, MEMBERS, b"fine_labels")

register_task(TaskSpec(
    name="cifar100",
    description="CIFAR-100 (fine labels), 100 classes, 45k/5k/10k; crop+flip; top-5 reported",
    load=load, input_shape=(3, 32, 32), num_classes=100,
    default_arch="lenet", archs=("lenet", "vgg6", "mlp", "mlp-1.1m", "mlp-6.3m", "pepita-mlp"),
    mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762), augment=True,
    epochs=90, batch_size=128, val_size=5000, n_train=50000, top5=True,
))
