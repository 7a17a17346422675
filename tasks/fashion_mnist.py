"""Fashion-MNIST (Xiao et al. 2017): 28x28 clothing images, 60k train (55k/5k) + 10k test."""

from bioplaus_bench.data import TaskSpec, idx_loader
from bioplaus_bench.registry import register_task

MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

register_task(TaskSpec(
    name="fashion-mnist",
    description="Fashion-MNIST clothing, 10 classes, 55k/5k/10k train/val/test; no augmentation",
    load=idx_loader("fashion-mnist", MD5, MIRRORS),
    input_shape=(1, 28, 28), num_classes=10,
    default_arch="mlp", archs=("mlp", "mlp-1.1m", "mlp-6.3m", "lenet", "pepita-mlp", "ff-mlp", "eqprop-mlp",
                                 "fcn4"),
    mean=(0.2860,), std=(0.3530,),
    epochs=3, batch_size=128, val_size=5000, n_train=60000,
))
