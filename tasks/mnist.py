"""MNIST (LeCun et al. 1998): 28x28 handwritten digits, 60k train (55k/5k train/val) + 10k test."""

from bioplaus_bench.data import TaskSpec, idx_loader
from bioplaus_bench.registry import register_task

MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")

register_task(TaskSpec(
    name="mnist",
    description="MNIST digits, 10 classes, 55k/5k/10k train/val/test; no augmentation",
    load=idx_loader("mnist", MD5, MIRRORS),
    input_shape=(1, 28, 28), num_classes=10,
    default_arch="mlp", archs=("mlp", "mlp-1.1m", "mlp-6.3m", "lenet", "pepita-mlp", "ff-mlp", "eqprop-mlp",
                                 "fcn4"),
    mean=(0.1307,), std=(0.3081,),
    epochs=3, batch_size=128, val_size=5000, n_train=60000,
))
