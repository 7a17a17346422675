"""Synthetic gradients: Jaderberg et al. 2017, "Decoupled Neural Interfaces using Synthetic Gradients",
ICML (DNI), and its label-conditioned variant (cDNI).

Each hidden block l = 1..N-1 (input detached, so blocks are update-unlocked) has a synthetic-gradient
module M_l that predicts the gradient of the per-sample loss with respect to its output h_l:
    dhat_l = M_l(h_l)                  (DNI)        dhat_l = M_l([h_l, c])   (cDNI, c = one-hot label)
    block l update:   dW_l = (1/B) sum_b (dh_l/dW_l)^T dhat_l          (dhat_l backpropagated through block l)
    output block N:   the true gradient of the mean task loss (its loss is local)
    regression target of M_l (bootstrapped, Jaderberg Sec. 2/3):
        d_{N-1} = dL/dh_{N-1}               (true gradient, through the output block)
        d_l     = (dh_{l+1}/dh_l)^T dhat_{l+1}   for l < N-1 (the synthetic gradient of the block above,
                                                 backpropagated through that block)
    M_l loss:  mean_b ||dhat_l - d_l||^2      (d_l detached)
M_l is linear (``sg_hidden`` = 0) or Linear-ReLU-Linear; its last layer starts at zero, so hidden blocks
get no update until the modules have learned something (as in the paper and koz4k/dni-pytorch).
Gradients are per-sample (the summed loss), so M_l's targets do not depend on the batch size; block
updates divide by B to match the mean loss the other rules use.

Hyperparameters (MNIST MLP 784-256x5-10, 3 epochs, chosen on validation accuracy; the sweeps are the records
under results/runs/issue7/ at commit 370e6b8, in git history). With one learning rate for every block no
setting reached 93%: a learning rate >= 1e-2 drives the hidden layers into tanh saturation within ~50 batches
and the net collapses to one class. A probe of the module predictions (results/probes/dni_dynamics.py, same
commit) shows why: a linear module can only predict E[dL/dh | h], which agrees poorly with the true per-sample
gradient at the lower blocks, where the bootstrapped predictions are also too large. So the lower blocks get
smaller learning rates (``lr_scale``, an optimiser choice, not in the paper): top hidden block x1, then x0.3,
x0.1, x0.03 (and x0.03 below), with a cosine schedule. On MNIST the rule's default batch is 32
(``task_defaults``): 3 epochs then give 93.26% test accuracy (mean of seeds 0-2,
results/leaderboards/mnist); the task's batch 128 gives 91.61% (results/tuning/dni-batch128). cDNI keeps one
learning rate (forward Adam 3e-4, modules Adam 3e-3).

Decoupled updates (Jaderberg Sec. 3.3, ``p_update`` < 1): on every batch each block draws, independently, whether
it and its module update; a block that does not keeps its weights and optimiser state for that batch (its
synthetic gradient is still computed, so the blocks below keep their targets).

Networks: the suite's MLPs and Jaderberg et al.'s FCNs (``bioplaus_bench/fcn.py``, Linear-BN-ReLU; the
``jaderberg2017`` study). Deviations: the modules are fully connected, so the rule accepts fully connected
networks only (the paper's convolutional modules for CNNs are not implemented). All blocks and modules are
updated in lockstep on one batch (the paper's decoupling is about *when* updates may happen; the update equations
are the same). Forward inputs are not synthesised (no forward unlocking, i.e. no BidirectionalInterface).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.01  # forward SGD learning rate of the top hidden block and the output block (see docstring)
    conditioned: bool = False  # cDNI: the modules also see the one-hot label (the regression target for MSE)
    sg_hidden: int = 0  # 0: linear module; > 0: one ReLU hidden layer of this width
    sg_optimizer: str = "adam"  # optimiser of the modules: adam | sgd
    sg_lr: float = 3e-3  # learning rate of the modules
    sg_bias: bool = True  # the modules' output layer has a bias
    output_lr: float = 0.0  # learning rate of the output block, which gets the true gradient (0: lr)
    # forward lr multiplier per hidden block, counted down from the output (top hidden block first); deeper
    # blocks take the last value. The lower blocks' bootstrapped synthetic gradients are the poorest (docstring)
    lr_scale: tuple[float, ...] = (1.0, 0.3, 0.1, 0.03)
    scheduler: str = "cosine"  # none | cosine (stepped once per epoch, eta_min 1e-5)
    p_update: float = 1.0  # each block (with its module) updates on a batch with this probability (Jaderberg Sec. 3.3)


def _module(width: int, context: int, hidden: int, bias: bool) -> nn.Module:
    last = nn.Linear(hidden or width + context, width, bias=bias)
    nn.init.zeros_(last.weight)  # zero-initialised output: no synthetic gradient at the start
    if bias:
        nn.init.zeros_(last.bias)
    return last if hidden == 0 else nn.Sequential(nn.Linear(width + context, hidden), nn.ReLU(), last)


class DNI(RuleBase):
    """DNI / cDNI: hidden blocks learn from learned predictions of their output gradient."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.blocks = list(model.children())
        device = next(model.parameters()).device  # every module and tensor of the rule lives here
        training = model.training
        model.eval()  # BatchNorm (Jaderberg et al.'s FCN) neither needs two samples nor records this pass
        with torch.no_grad():  # widths of the hidden blocks' outputs
            h, widths = torch.zeros(1, *task.input_shape, device=device), []
            for block in self.blocks[:-1]:
                h = block(h)
                widths.append(h[0].numel())
        model.train(training)
        self.context = task.num_classes if cfg.conditioned else 0
        self.feedback_net = nn.ModuleList(
            _module(w, self.context, cfg.sg_hidden, cfg.sg_bias) for w in widths).to(device)
        # each block is its own module (decoupled), with its own optimiser and learning rate
        hidden = self.blocks[:-1]
        if not cfg.lr_scale:
            raise ValueError("lr_scale needs at least one value (top hidden block first)")
        scales = [cfg.lr_scale[min(k, len(cfg.lr_scale) - 1)] for k in range(len(hidden))][::-1]
        self.opts = [self.add_optimizer(b.parameters(), dataclasses.replace(cfg, lr=cfg.lr * sc))
                     for b, sc in zip(hidden, scales, strict=True)]
        self.opts.append(self.add_optimizer(self.blocks[-1].parameters(),
                                            dataclasses.replace(cfg, lr=cfg.output_lr or cfg.lr)))
        if cfg.sg_optimizer not in ("adam", "sgd"):
            raise ValueError(f"sg_optimizer {cfg.sg_optimizer!r} not in adam, sgd")
        opt_cls = torch.optim.Adam if cfg.sg_optimizer == "adam" else torch.optim.SGD
        self.sg_opt = opt_cls(self.feedback_net.parameters(), lr=cfg.sg_lr)
        self.optimizers.append(self.sg_opt)
        if not 0 < cfg.p_update <= 1:
            raise ValueError(f"p_update {cfg.p_update} not in (0, 1]")

    def synthetic(self, layer: int, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dhat_l = M_l(h_l [, c]) for hidden block ``layer`` (0-based), shaped like h."""
        inp = h.detach().flatten(1)
        if self.context:
            c = F.one_hot(y, self.context).to(inp.dtype) if self.task.loss == "ce" else y.flatten(1).to(inp.dtype)
            inp = torch.cat([inp, c], 1)
        return self.feedback_net[layer](inp).view_as(h)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for opt in (*self.opts, self.sg_opt):
            opt.zero_grad(set_to_none=False)
        inputs, outputs, h = [], [], x
        for block in self.blocks:  # every block's input detached: update-unlocked blocks
            inp = h.detach().requires_grad_(True)
            h = block(inp)
            inputs.append(inp)
            outputs.append(h)
        b = x.shape[0]
        # output block: the true gradient of the summed loss; its input's gradient is d_{N-1}
        self.loss(outputs[-1], y, reduction="sum").backward()
        sg_loss = torch.zeros((), device=x.device)
        for layer in range(len(self.blocks) - 2, -1, -1):
            target = inputs[layer + 1].grad.detach()  # d_l (true for l = N-1, bootstrapped below it)
            dhat = self.synthetic(layer, outputs[layer], y)
            sg_loss = sg_loss + (dhat - target).pow(2).flatten(1).sum(1).mean()
            # RULE: block l follows its synthetic gradient; this also fills d_{l-1} in its input's .grad
            outputs[layer].backward(dhat.detach())
        for p in self.model.parameters():  # summed-loss gradients -> mean-loss gradients
            if p.grad is not None:
                p.grad.div_(b)
        # decoupled updates: each block, with its module, updates independently with probability p_update
        updates = (torch.rand(len(self.blocks)) < self.cfg.p_update).tolist() if self.cfg.p_update < 1 else None
        for k, opt in enumerate(self.opts):
            if updates is None or updates[k]:
                opt.step()
        with self.feedback_timer():  # the modules' regression counts as feedback training
            sg_loss.backward()
            if updates is not None:  # a skipped module keeps its weights and its Adam moments
                for module, on in zip(self.feedback_net, updates, strict=False):
                    for p in module.parameters():
                        p.grad = p.grad if on else None
            self.sg_opt.step()
        return outputs[-1].detach()


def fully_connected(arch: str) -> bool:
    """The modules are fully connected: on a conv net the first module alone would map a 8192-d feature map
    (LeNet) or a 32768-d one (VGG6) to itself; the paper's CNN experiments use convolutional modules."""
    return arch.startswith(("mlp", "fcn")) or arch == "linear3"


# batch 32 on MNIST, where it learns best (claims index: the leaderboard at 32, results/tuning/dni-batch128 at 128)
register_algorithm("dni", Config, supports=fully_connected, task_defaults={"mnist": {"batch_size": 32}})(DNI)


@dataclass(frozen=True)
class CDNIConfig(Config):
    conditioned: bool = True  # cDNI: the modules also see the one-hot label
    lr_scale: tuple[float, ...] = (1.0,)  # one learning rate for every block (its label input suffices)
    scheduler: str = "none"  # constant learning rate
    optimizer: str = "adam"  # forward optimiser (Adam 3e-4 beat SGD 3e-3 on validation, 3 epochs)
    lr: float = 3e-4  # forward learning rate


class CDNI(DNI):
    """cDNI: DNI whose gradient predictors also see the label (Jaderberg et al. Sec. 3.2)."""


register_algorithm("cdni", CDNIConfig, supports=fully_connected)(CDNI)
