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
s_{i-1}, a deviation we do not copy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from bioplaus_bench.algorithms.dtp import DTP
from bioplaus_bench.algorithms.dtp import Config as DTPConfig

from bioplaus_bench import targetprop as tp
from bioplaus_bench.registry import register_algorithm


@dataclass(frozen=True)
class Config(DTPConfig):
    fb_noise: tuple[float, ...] = (0.1,)  # sigma of the corruption, per layer (or one value)


class DRL(DTP):
    """DRL (Meulemans et al. 2020): feedback trained by the difference reconstruction loss through the top."""

    def __init__(self, model: torch.nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.has_pooling = not tp.is_mlp(self.blocks)  # conv nets must restore their clean pooling indices

    def feedback_loss(self, layer: int, s: list[torch.Tensor]) -> torch.Tensor:
        sigma = self.noise[layer - 1]
        blocks, fb = self.blocks, self.feedback
        h_c = s[layer] + sigma * torch.randn_like(s[layer])
        with torch.no_grad():
            a = h_c
            for block in blocks[layer:]:  # steps 1-2: the corrupted input travels to the output
                a = block(a)
            if self.has_pooling:  # restore the clean pooling indices for the feedback path
                for j in range(layer, len(blocks)):
                    blocks[j](s[j])
            r = a
            for j in range(len(blocks) - 1, layer, -1):  # step 3: difference path down to s_i
                r = s[j] + fb[j](r) - fb[j](s[j + 1])
        h_rec = s[layer] + fb[layer](r) - fb[layer](s[layer + 1])  # step 4: gradient reaches G_i only
        # RULE (Eq. DRL): ||h_rec - h_c||^2 / sigma^2
        return (h_rec - h_c).pow(2).sum() / (sigma**2 * h_c.shape[0])


register_algorithm("drl", Config)(DRL)
