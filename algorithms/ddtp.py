"""Direct difference target propagation (DDTP): Meulemans et al. 2020, "A Theoretical Framework for Target
Propagation", NeurIPS. DDTP-linear (their code's DMLPDTP2 with linear direct feedback) on MLPs, and
DDTPConvCIFAR's scheme on conv nets: the baseline of Ernoult et al. 2022's "Meulemans et al." LeNet row.

Equations (s_l the output of block l, a = s_N the network's linear output, Q_l a direct linear map from the
output space to block l's output, flattened; no bias: it cancels in every difference below):
    t_N = a - beta dL_sum/da                                     (output target: the output block is BP-like)
    t_l = s_l + Q_l t_N - Q_l a = s_l + Q_l (t_N - a)            (l = 1..N-1, every hidden block at once)
    forward loss = sum_l ||s_l - t_l||^2 / (B n_l)      (inputs of blocks detached; as in their code, n_l = 1
        for fully connected blocks, a sum over units, and the number of units for conv blocks, a mean: with
        Adam's eps the scale of a gradient matters, so it is theirs)
Feedback (the difference reconstruction loss of direct feedback), for each hidden block l, e ~ N(0, sigma^2 I):
    h_c = s_l + e,  o_c = F_N(... F_{l+1}(h_c))  (no graph),  rec = s_l + Q_l (o_c - a)
    L_l = mean over batch and units of (rec - h_c)^2 / sigma^2 (their MSE); one Adam over every Q_l.
For small sigma, L_l = E||(Q_l J_l - I) e||^2 / (sigma^2 n_l) with J_l = da/ds_l; its minimum over Q_l is the
pseudo-inverse Q_l = J_l^+, where t_l - s_l = -beta J_l^+ dL/da: the Gauss-Newton-style (minimum-norm) target
of the paper's theory (tests/test_ddtp.py checks both on a frozen linear network).

Schedule per batch ("parallel" in their code): forward pass; targets with the current Q; the feedback steps
(``fb_iterations``); the forward step (it does not depend on Q's step, so the order is theirs). Before training,
``warmup_epochs`` feedback-only epochs (their epochs_fb; counted in epoch 1's time).

Deviations from their code: float32 instead of float64; PyTorch's default forward init instead of Xavier-normal;
beta acts on the summed cross-entropy (their lambda on the mean: beta = lambda / batch size in the presets, the
same targets); their extra feedback-only epoch after every training epoch is one extra feedback step per batch instead
(``fb_iterations`` 2: as many feedback steps per epoch, interleaved, and counted in the epoch time); on conv nets
the suite's LeNet (ELU) instead of their tanh network; F-MNIST is normalised (their code does not).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bioplaus_bench import targetprop as tp
from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    optimizer: str = "adam"  # forward optimiser (their Adam; sgd uses ``momentum``)
    lr: float = 3.3385e-4  # forward lr of every block unless ``layer_lr`` (their MNIST config, raw lr / lambda)
    layer_lr: tuple[float, ...] = ()  # forward lr per block (or one value); empty: ``lr`` everywhere
    betas: tuple[float, ...] = (0.9, 0.999)  # forward Adam betas
    eps: tuple[float, ...] = (1.2552e-8,)  # forward Adam eps, per block (or one value)
    beta: float = 4.763e-4  # output target step on the summed loss (their lambda 0.060969 / batch 128)
    fb_lr: float = 1.6378e-4  # feedback Adam lr (one optimiser over every Q)
    fb_betas: tuple[float, ...] = (0.999, 0.999)  # feedback Adam betas
    fb_eps: float = 2.8384e-4  # feedback Adam eps
    fb_weight_decay: float = 5.8362e-7  # L2 on Q inside Adam (their feedback_wd)
    fb_noise: float = 0.090752  # sigma of the reconstruction noise
    fb_iterations: int = 2  # feedback steps per batch (1 + their extra feedback epoch; module docstring)
    warmup_epochs: int = 6  # feedback-only epochs before training (their epochs_fb)


class DDTP(RuleBase):
    """DDTP (Meulemans et al. 2020): targets from the output through direct linear feedback, trained by DRL."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.blocks = list(model.children())
        dev = next(model.parameters()).device
        s, _ = tp.clean_forward(self.blocks, torch.zeros(1, *task.input_shape, device=dev))
        n_out = s[-1].shape[1]
        # Q_l: output space -> block l's output (flattened), Xavier-normal as in their code, for l = 1..N-1
        self.feedback_net = nn.ModuleList(nn.Linear(n_out, h[0].numel(), bias=False, device=dev) for h in s[1:-1])
        for q in self.feedback_net:
            nn.init.xavier_normal_(q.weight)
        self.fb_opt = torch.optim.Adam(self.feedback_net.parameters(), lr=cfg.fb_lr, betas=tuple(cfg.fb_betas),
                                       eps=cfg.fb_eps, weight_decay=cfg.fb_weight_decay)
        n = len(self.blocks)
        lrs = tp.per_layer(cfg.layer_lr or (cfg.lr,), n, "layer_lr")
        eps = tp.per_layer(cfg.eps, n, "eps")
        groups = [{"params": list(b.parameters()), "lr": lr, "eps": e} for b, lr, e in zip(self.blocks, lrs, eps,
                                                                                            strict=True)]
        if cfg.optimizer == "adam":
            self.opt = torch.optim.Adam(groups, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
        else:
            self.opt = torch.optim.SGD(groups, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.optimizers += [self.opt, self.fb_opt]
        if cfg.scheduler == "cosine":
            self.schedulers.append(torch.optim.lr_scheduler.CosineAnnealingLR(
                self.opt, T_max=cfg.cosine_t_max or max(epochs, 1), eta_min=1e-5))

    def feedback_loss(self, s: list[torch.Tensor]) -> torch.Tensor:
        """sum_l L_l (Eq. DRL of the direct feedback) on the clean activations ``s`` (detached)."""
        sigma, a, total = self.cfg.fb_noise, s[-1], 0.0
        for k, q in enumerate(self.feedback_net, start=1):
            h = s[k]
            h_c = h + sigma * torch.randn_like(h)
            with torch.no_grad():
                o_c = h_c
                for block in self.blocks[k:]:  # the corrupted activation travels to the output
                    o_c = block(o_c)
            rec = h + q(o_c - a).view_as(h)
            # RULE (Eq. DRL): ||rec - h_c||^2 / sigma^2, meaned over the batch and the units
            total = total + (rec - h_c).pow(2).mean() / sigma**2
        return total

    def train_feedback(self, s: list[torch.Tensor]) -> None:
        with self.feedback_timer():
            for _ in range(self.cfg.fb_iterations):
                self.fb_opt.zero_grad(set_to_none=False)
                self.feedback_loss(s).backward()
                self.fb_opt.step()

    def warmup(self, batches) -> None:
        for _ in range(self.cfg.warmup_epochs):
            for x, _y in batches:
                self.train_feedback(tp.clean_forward(self.blocks, x)[0])

    def targets(self, s: list[torch.Tensor], y: torch.Tensor) -> list[torch.Tensor | None]:
        """[None, t_1, ..., t_N]: the output target and the direct difference targets of the hidden blocks."""
        a = s[-1].detach()
        t_out = tp.output_target(self.task.loss, a, y, self.cfg.beta)
        with torch.no_grad():
            hidden = [h.detach() + q(t_out - a).view_as(h) for h, q in zip(s[1:-1], self.feedback_net, strict=True)]
        return [None, *hidden, t_out]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s, _ = tp.forward_blocks(self.blocks, x)
        t = self.targets(s, y)  # RULE: t_N, then t_l = s_l + Q_l (t_N - a) with the current Q (docstring)
        self.train_feedback(tp.detached(s))
        # RULE: sum_l ||s_l - t_l||^2 / (B n_l): summed over units for fully connected blocks, meaned for conv ones
        self.opt.zero_grad(set_to_none=False)
        sum(((h - target).pow(2).sum() / (h.shape[0] * (h[0].numel() if h.dim() > 2 else 1))
             for h, target in zip(s[1:], t[1:], strict=True))).backward()
        self.opt.step()
        return s[-1].detach()


# Ernoult et al.'s "Meulemans et al. (2020)" LeNet row is their DDTPConvCIFAR configuration (setups.md section 2)
LENET = {"layer_lr": (0.016248, 0.055475, 0.0089152, 2.1220e-4), "eps": (2.7868e-8, 1.9869e-8, 4.5152e-6, 4.0461e-5),
         "betas": (0.9, 0.999), "beta": 0.015962 / 128, "fb_lr": 4.5157e-3, "fb_betas": (0.9, 0.999),
         "fb_eps": 7.5291e-7, "fb_weight_decay": 6.1693e-5, "fb_noise": 0.0092104, "warmup_epochs": 10}
register_algorithm(
    "ddtp", Config, smoke={"warmup_epochs": "0", "fb_iterations": "1"},
    presets={
        # final_configs/mnist_DDTPlinear.py and fashion_mnist_DDTPlinear.py (the validation-split configs)
        "meulemans2020-mnist": {"arch": "mlp", "batch_size": 128, "epochs": 100},
        "meulemans2020-fashion-mnist": {
            "arch": "mlp", "batch_size": 128, "epochs": 100, "lr": 5.0454e-4, "betas": (0.99, 0.99),
            "eps": (1.7280e-8,), "beta": 0.017250 / 128, "fb_lr": 7.9591e-4, "fb_betas": (0.99, 0.9),
            "fb_eps": 3.1082e-8, "fb_weight_decay": 5.7827e-6, "fb_noise": 0.098573},
        # s-DDTP in Ernoult et al.'s fork: the DDTPConvCIFAR configuration with 90 epochs
        "ernoult2022-lenet": {"arch": "lenet", "batch_size": 128, "epochs": 90, **LENET},
    },
    arch_defaults={"lenet": LENET},
)(DDTP)
