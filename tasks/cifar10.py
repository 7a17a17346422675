"""CIFAR-10 (Krizhevsky 2009): 32x32 colour images, 10 classes, 50k train (45k/5k) + 10k test.

Read from the official python tarball; normalised with CIFAR-10's own statistics (not MNIST's, a bug of
the FW-DTP code); random crop (pad 4, edge) and horizontal flip on training batches (Ernoult et al.).
"""

from bioplaus_bench.data import TaskSpec, cifar_loader
from bioplaus_bench.registry import register_task

ARCHIVE = "cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MEMBERS = {"train": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
           "test": ["cifar-10-batches-py/test_batch"]}

load = cifar_loader("cifar-10", ARCHIVE, MD5, URL, MEMBERS, b"labels")

register_task(TaskSpec(
    name="cifar10",
    description="CIFAR-10, 10 classes, 45k/5k/10k; crop+flip augmentation",
    load=load, input_shape=(3, 32, 32), num_classes=10,
    default_arch="lenet", archs=("lenet", "vgg6", "mlp", "mlp-1.1m", "mlp-6.3m", "pepita-mlp"),
    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), augment=True,
    epochs=90, batch_size=128, val_size=5000, n_train=50000,
))
