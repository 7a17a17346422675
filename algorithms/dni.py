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

Hyperparameters (MNIST MLP 784-256x5-10, 3 epochs, validation accuracy; records in
results/runs/issue7/dni_tuning): DNI SGD lr 3e-3, momentum 0.9, modules Adam 3e-3: 91.1%. Nothing tried
reached 93%: lr 5e-3 88.8%; lr >= 1e-2, momentum-free lr 3e-2, or lr 1e-2 with weight decay 1e-3: the hidden
layers drift into tanh saturation within ~50 batches and the net collapses to one class; batch 32: 90.8% / 91.7%
(lr 3e-3 / 1e-3); modules Adam 3e-5 / 1e-3: 77.1% / 90.9%; modules SGD 1e-3 / 3e-3 / 1e-2: 53.9% / 58.9% / 78.9%;
one-hidden-layer modules (256 or 1024 units): 66.6-83.0%; forward Adam 1e-3: 90.5%; an output-block learning rate
(``output_lr``) of 1e-2 / 3e-2 / 1e-1: 91.6% / 88.0% / collapse. cDNI: forward Adam 3e-4, modules Adam 3e-3:
93.8%. Why unconditioned DNI stalls near 91% (training the output layer alone, rule ``shallow``, reaches 86%
at lr 3e-3; results/probes/dni_dynamics_*.out): its linear modules can only predict E[dL/dh | h], whose cosine
with the true per-sample gradient is ~0.3 at the top hidden layer and <= 0.1 at the lowest two, where the
bootstrapped predictions are also 2-5x larger than the true gradient; cDNI's label input gives ~0.5-0.7 at
the top three layers.

Deviations: all blocks and modules are updated in lockstep on one batch (the paper's decoupling is about
*when* updates may happen; the update equations are the same). Forward inputs are not synthesised
(no forward unlocking, i.e. no BidirectionalInterface).
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
    lr: float = 0.003  # forward SGD learning rate (chosen on MNIST validation accuracy, 3 epochs; see docstring)
    conditioned: bool = False  # cDNI: the modules also see the one-hot label (the regression target for MSE)
    sg_hidden: int = 0  # 0: linear module; > 0: one ReLU hidden layer of this width
    sg_optimizer: str = "adam"  # optimiser of the modules: adam | sgd
    sg_lr: float = 3e-3  # learning rate of the modules
    sg_bias: bool = True  # the modules' output layer has a bias
    output_lr: float = 0.0  # learning rate of the output block, which gets the true gradient (0: lr)


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
        with torch.no_grad():  # widths of the hidden blocks' outputs
            h, widths = torch.zeros(1, *task.input_shape), []
            for block in self.blocks[:-1]:
                h = block(h)
                widths.append(h[0].numel())
        self.context = task.num_classes if cfg.conditioned else 0
        self.feedback = nn.ModuleList(_module(w, self.context, cfg.sg_hidden, cfg.sg_bias) for w in widths)
        hidden = [p for b in self.blocks[:-1] for p in b.parameters()]
        self.opt = self.add_optimizer(hidden, cfg)  # each block is its own module (decoupled), so the output
        self.out_opt = self.add_optimizer(  # block may have its own learning rate
            self.blocks[-1].parameters(), dataclasses.replace(cfg, lr=cfg.output_lr or cfg.lr))
        if cfg.sg_optimizer not in ("adam", "sgd"):
            raise ValueError(f"sg_optimizer {cfg.sg_optimizer!r} not in adam, sgd")
        opt_cls = torch.optim.Adam if cfg.sg_optimizer == "adam" else torch.optim.SGD
        self.sg_opt = opt_cls(self.feedback.parameters(), lr=cfg.sg_lr)
        self.optimizers.append(self.sg_opt)

    def synthetic(self, layer: int, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dhat_l = M_l(h_l [, c]) for hidden block ``layer`` (0-based), shaped like h."""
        inp = h.detach().flatten(1)
        if self.context:
            c = F.one_hot(y, self.context).to(inp.dtype) if self.task.loss == "ce" else y.flatten(1).to(inp.dtype)
            inp = torch.cat([inp, c], 1)
        return self.feedback[layer](inp).view_as(h)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for opt in (self.opt, self.out_opt, self.sg_opt):
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
        sg_loss = torch.zeros(())
        for layer in range(len(self.blocks) - 2, -1, -1):
            target = inputs[layer + 1].grad.detach()  # d_l (true for l = N-1, bootstrapped below it)
            dhat = self.synthetic(layer, outputs[layer], y)
            sg_loss = sg_loss + (dhat - target).pow(2).flatten(1).sum(1).mean()
            # RULE: block l follows its synthetic gradient; this also fills d_{l-1} in its input's .grad
            outputs[layer].backward(dhat.detach())
        for p in self.model.parameters():  # summed-loss gradients -> mean-loss gradients
            if p.grad is not None:
                p.grad.div_(b)
        self.opt.step()
        self.out_opt.step()
        with self.feedback_timer():  # the modules' regression counts as feedback training
            sg_loss.backward()
            self.sg_opt.step()
        return outputs[-1].detach()


register_algorithm("dni", Config)(DNI)


@dataclass(frozen=True)
class CDNIConfig(Config):
    conditioned: bool = True  # cDNI: the modules also see the one-hot label
    optimizer: str = "adam"  # forward optimiser (validation: Adam 3e-4 93.8%, SGD 3e-3 93.4%, 3 epochs)
    lr: float = 3e-4  # forward learning rate


class CDNI(DNI):
    """cDNI: DNI whose gradient predictors also see the label (Jaderberg et al. Sec. 3.2)."""


register_algorithm("cdni", CDNIConfig)(CDNI)
