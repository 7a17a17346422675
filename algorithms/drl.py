"""DRL, the difference reconstruction loss: Meulemans et al. 2020, "A Theoretical Framework for Target
Propagation", NeurIPS (code name DTPDRL).

Targets and forward updates are DTP's (algorithms/dtp.py):
    t_N = s_N - beta dL_sum/ds_N,  t_{l-1} = s_{l-1} + G_l(t_l) - G_l(s_l),  loss sum_l 1/2 ||s_l - t_l||^2.
Feedback loss of G_i (i = 1..N-1), with e ~ N(0, sigma^2 I):
    1. corrupt the block input:          h_c = s_{i-1} + e
    2. propagate it to the output:       a_i = F_i(h_c), ..., a_N = F_N(a_{N-1})
    3. come back down to s_i through the difference-corrected path of the layers above:
         r_N = a_N;  r_{j-1} = s_{j-1} + G_j(r_j) - G_j(s_j)   for j = N..i+1
    4. one more difference step through G_i: h_rec = s_{i-1} + G_i(r_i) - G_i(s_i)
    L_DRL = ||h_rec - h_c||^2 / sigma^2 (summed over units, meaned over the batch); only G_i learns.
The loss compares with the corrupted h_c, as Meulemans et al. do (the FW-DTP code compares with the clean
s_{i-1}, a deviation we do not copy). Unpooling on the way down uses the clean forward pass's indices.

Computation (exact): G_j trains after every G_i below it (forward order), so the clean terms G_j(s_{j+1}) of step
3 are computed once per batch, before any feedback step, and while G_i trains steps 1-3 involve only constant
maps: the k iterations' corrupted paths run as one batch of k b rows, their noise drawn in one call (the same
numbers as one draw per iteration). Each iteration then takes step 4 and its SGD step; for the MLPs' Lee maps
G_i = act(V h + c) step 4's gradient is in closed form, G_i at r_i and at s_i as one 2b-row product and
dL/d(V h + c) = act'(+-2 (h_rec - h_c) / (sigma^2 b)), without an autograd graph (``fit_feedback``;
``feedback_loss`` is the same loss for one draw through autograd, and a test checks that both give the same
weights). The feedback SGD steps use PyTorch's fused kernel (DTP's).

Meulemans et al.'s two feedback extras are options: feedback pre-training epochs (``warmup_epochs``, DTP's) and an
L2 weight decay on the feedback weights (``fb_weight_decay``, added to the feedback SGD's gradient). Both default to
off, as in the FW-DTP code (plain SGD, no decay) whose DRL the Shibuya et al. cells reproduce; no cell of the suite
cites Meulemans et al.'s DRL settings, and their decay value is not in our references.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from bioplaus_bench.algorithms.dtp import DTP, act_backward, chunks, lee_parts, set_lee_grads
from bioplaus_bench.algorithms.dtp import Config as DTPConfig

from bioplaus_bench import targetprop as tp
from bioplaus_bench.registry import register_algorithm


@dataclass(frozen=True)
class Config(DTPConfig):
    fb_noise: tuple[float, ...] = (0.1,)  # sigma of the corruption, per layer (or one value)
    fb_weight_decay: float = 0.0  # L2 decay of the feedback weights, in their SGD step (Meulemans et al.); 0: none

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.fb_weight_decay >= 0:  # `not >=` also rejects NaN
            raise ValueError(f"fb_weight_decay = {self.fb_weight_decay!r}; accepted: a number >= 0")


class DRL(DTP):
    """DRL (Meulemans et al. 2020): feedback trained by the difference reconstruction loss through the top."""

    def __init__(self, model: torch.nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        for fb in self.feedback:  # the shared builder makes plain SGD; Meulemans et al.'s decay joins its step
            if fb.opt is not None:
                fb.opt.param_groups[0]["weight_decay"] = cfg.fb_weight_decay

    def feedback_loss(self, i: int, s: list[torch.Tensor], pools: list[tp.Pools]) -> torch.Tensor:
        """L_DRL of block i's G for one noise draw, differentiable in G_i's weights (steps 1-3 by
        ``corrupted_paths``, step 4 by autograd): the reference for ``fit_feedback``."""
        fb = self.feedback[i]
        h_c, r = self.corrupted_paths(i, s, pools, self.upper_terms(s, pools), 1)
        h_rec = s[i] + fb.map(r[0], pools[i]) - fb.map(s[i + 1], pools[i])  # step 4: the gradient reaches G_i
        # RULE (Eq. DRL): ||h_rec - h_c||^2 / sigma^2
        return (h_rec - h_c[0]).pow(2).sum() / (fb.noise**2 * s[i].shape[0])

    @torch.no_grad()
    def upper_terms(self, s: list[torch.Tensor], pools: list[tp.Pools]) -> dict[int, torch.Tensor]:
        """G_j(s_{j+1}) for every trainable j >= 2: the clean terms of step 3. G_j trains after every G_i below it
        (forward order), so these values, taken before any feedback step of the batch, are exact for every i < j."""
        return {j: self.feedback[j].map(s[j + 1], pools[j]) for j in range(2, len(self.blocks))}

    def train_feedback(self, s: list[torch.Tensor], pools: list[tp.Pools]) -> None:
        with self.feedback_timer():
            upper = self.upper_terms(s, pools)  # once per batch
            for i, fb in enumerate(self.feedback):
                if fb.opt is not None:
                    self.fit_feedback(i, s, pools, upper)

    @torch.no_grad()
    def corrupted_paths(self, i: int, s: list[torch.Tensor], pools: list[tp.Pools], upper: dict[int, torch.Tensor],
                        k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1-3 of k iterations as one batch: h_c, (k, b, ...), and r at block i's output, (k, b, ...). Only
        F and the G above i enter them, and those do not change while G_i trains (forward order), so the k
        iterations' paths are independent; the noise is one draw of k, the same numbers as k draws."""
        sigma, fb, blocks, x = self.feedback[i].noise, self.feedback, self.blocks, s[i]
        h_c = x + sigma * torch.randn(k, *x.shape, dtype=x.dtype, device=x.device)
        a = h_c.flatten(0, 1)
        for block in blocks[i:]:
            a = block(a)
        r = a
        for j in range(len(blocks) - 1, i, -1):
            r = (s[j] + fb[j].map(r, pools[j]).view(k, *s[j].shape) - upper[j]).flatten(0, 1)
        return h_c, r.view(k, *s[i + 1].shape)

    def fit_feedback(self, i: int, s: list[torch.Tensor], pools: list[tp.Pools],
                     upper: dict[int, torch.Tensor]) -> None:
        """``iterations`` SGD steps of G_i on L_DRL, the same noise and steps as ``fit`` on ``feedback_loss``
        (tests/test_targetprop.py): the paths of all iterations as one batch (``corrupted_paths``), per iteration
        only step 4; for the Lee maps of MLPs, G = act(V h + c), with its gradient in closed form (G at r and at
        s_i as one 2b-row product, dL/d(V h + c) = act'(+-2 (h_rec - h_c) / (sigma^2 b))), no autograd graph."""
        fb, b, lee = self.feedback[i], s[i].shape[0], lee_parts(self.feedback[i].map)
        for k in chunks(fb.iterations, b * sum(h[0].numel() for h in s[i:])):
            h_c, r = self.corrupted_paths(i, s, pools, upper, k)
            for j in range(k):
                if lee is not None:
                    self.lee_step(i, s, h_c[j], r[j], *lee)
                else:  # the conv nets' layer inverses: autograd
                    fb.opt.zero_grad(set_to_none=False)
                    # RULE (Eq. DRL): ||h_rec - h_c||^2 / sigma^2, h_rec = s_{i-1} + G_i(r_i) - G_i(s_i); G_i called
                    # twice, not on a stacked batch, so that a bias that cancels in the difference gets exactly zero
                    h_rec = s[i] + fb.map(r[j], pools[i]) - fb.map(s[i + 1], pools[i])
                    ((h_rec - h_c[j]).pow(2).sum() / (fb.noise**2 * b)).backward()
                    fb.opt.step()

    @torch.no_grad()
    def lee_step(self, i: int, s: list[torch.Tensor], h_c: torch.Tensor, r: torch.Tensor, lin: torch.nn.Linear,
                 act: torch.nn.Module) -> None:
        """Step 4 and one SGD step of a Lee map G_i = act(V h + c), its gradient in closed form."""
        fb, b = self.feedback[i], h_c.shape[0]
        h = torch.cat([r, s[i + 1]])
        pre = F.linear(h, lin.weight, lin.bias)
        g = act(pre)  # [G_i(r_i); G_i(s_i)]
        # RULE (Eq. DRL): the gradient of ||h_rec - h_c||^2 / (sigma^2 b), h_rec = s_{i-1} + G_i(r_i) - G_i(s_i)
        d = (s[i] + g[:b] - g[b:] - h_c) * (2.0 / (fb.noise**2 * b))
        set_lee_grads(lin, h, act_backward(act, torch.cat([d, -d]), pre, g))
        fb.opt.step()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s, pools = tp.forward_blocks(self.blocks, x)
        self.train_feedback(tp.detached(s), pools)  # every G_i first, on this batch, by the loss above
        # RULE: DTP's targets and local losses (module docstring)
        t = tp.propagate(self.feedback, s, pools, tp.output_target(self.task.loss, s[-1], y, self.cfg.beta))
        tp.local_forward_step(s, t, self.opt, scale=0.5)
        return s[-1].detach()


register_algorithm("drl", Config, smoke={"fb_iterations": "1", "warmup_epochs": "0"})(DRL)
