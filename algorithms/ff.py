"""Forward-Forward (FF): G. Hinton 2022, "The Forward-Forward Algorithm: Some Preliminary Investigations",
arXiv 2212.13345 (supervised MNIST variant, section 3.3).

The label is written into the image (the first C pixels of the flattened input hold its one-hot code). Every
layer l sees its input length-normalised, n(h) = h / (sqrt(mean(h^2)) + 1e-8), and computes y_l = relu(W_l n(h_{l-1})
+ b_l); its goodness is G_l = sum_j y_lj^2 and p(positive) = sigmoid((G_l - theta d_l) / T). Each layer minimises
its own logistic loss on positive data (the true label) and negative data (a uniformly drawn wrong label):
    L_l = mean_batch softplus(-(G_l^pos - theta d_l) / T) + mean_batch softplus((G_l^neg - theta d_l) / T)
          + lambda_peer mean_j (m_lj - mean_k m_lk)^2          (peer normalisation)
with m_l the running mean (momentum 0.9) of layer l's positive activity. The input of every layer is detached,
so no gradient crosses a layer: W_l learns from L_l alone. The normalisation hides the previous layer's goodness
from the next layer, which must find new features.

Prediction (the network's output, used by evaluation and the angle to BP): for each of the C labels, the summed
mean-square activity of every layer but the first (whose goodness mostly reads the label pixels), i.e. the
goodness over d_l; the argmax is the prediction. These C scores are the "logits" the harness's cross-entropy
reads; their scale is not a trained softmax's, so the logged loss is not comparable with other rules'.

Network: ``ff-mlp`` (for this rule only): in-500x3, ReLU, biases, PyTorch's default initialisation (0.89M
parameters on MNIST; the paper: 4 x 2000, loeweX/Forward-Forward: 3 x 1000). Defaults chosen on MNIST validation
accuracy after 1 epoch (results/tuning/ff, Adam lr x T): lr 0.003, T 100, 91.26% (T 20: 88.14%; T 1, the ports'
value: 72.12%, because at T 1 the logistic loss saturates once positive and negative mean squares differ by a few
hundredths, long before the label is read reliably; lr 0.01: every layer dies, 8-9%).

Deviations: Adam and T 100 (above); the reference recipes train with SGD (lr 1e-3 to 1e-2, momentum 0.9) for
60-100 epochs; a softmax read-out on the activities (the cheaper prediction of the ports) is not trained;
negative labels are uniform, not drawn from the model's predictions (the MATLAB recipe's hard negatives).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bioplaus_bench.registry import register_algorithm, register_arch
from bioplaus_bench.rule import OptimConfig, RuleBase


def length_normalise(h: torch.Tensor) -> torch.Tensor:
    """Divide each sample by its root-mean-square activity: mean square 1, the goodness information removed."""
    return h / (h.pow(2).mean(1, keepdim=True).sqrt() + 1e-8)


class GoodnessNet(nn.Module):
    """Fully connected ReLU layers with length-normalised inputs; the output is each label's goodness."""

    def __init__(self, d_in: int, widths: list[int], num_classes: int) -> None:
        super().__init__()
        if num_classes > d_in:
            raise ValueError(f"cannot embed {num_classes} labels in {d_in} inputs")
        self.num_classes = num_classes
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip([d_in, *widths], widths, strict=False))

    def embed(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The flattened image with its first C values replaced by the one-hot label."""
        x = x.flatten(1).clone()
        x[:, :self.num_classes] = F.one_hot(labels, self.num_classes).to(x.dtype)
        return x

    def activities(self, x: torch.Tensor) -> list[torch.Tensor]:
        hs, h = [], x
        for lin in self.layers:
            h = torch.relu(lin(length_normalise(h)))
            hs.append(h)
        return hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, n = self.num_classes, len(x)
        labels = torch.arange(c, device=x.device).repeat_interleave(n)
        hs = self.activities(self.embed(x.repeat(c, *([1] * (x.dim() - 1))), labels))
        goodness = sum(h.pow(2).mean(1) for h in hs[1:])  # every layer but the first
        return goodness.view(c, n).t()


@register_arch("ff-mlp", rules=("ff",))
def ff_mlp(input_shape: tuple[int, ...], num_classes: int) -> GoodnessNet:
    """Forward-Forward net: in-500x3, ReLU, length-normalised layer inputs; output = goodness per label."""
    return GoodnessNet(math.prod(input_shape), [500, 500, 500], num_classes)


@dataclass(frozen=True)
class Config(OptimConfig):
    optimizer: str = "adam"  # Adam, not swept (the references' SGD + momentum recipes run 60-100 epochs)
    lr: float = 0.003  # learning rate of every layer (results/tuning/ff; 0.01 kills the layers)
    threshold: float = 1.0  # theta: the goodness threshold per unit (G_l compared with theta d_l, as the ports)
    temperature: float = 100.0  # T: p(positive) = sigmoid((G - theta d) / T) (results/tuning/ff; the ports: 1)
    peer_norm: float = 0.03  # lambda_peer, the weight of peer normalisation (loeweX/Forward-Forward: 0.03)
    peer_momentum: float = 0.9  # momentum of the running mean positive activity per unit


class FF(RuleBase):
    """Forward-Forward: every layer raises its goodness on positive data and lowers it on negative data."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        if not isinstance(model, GoodnessNet):
            raise ValueError("FF trains a GoodnessNet (architecture ff-mlp)")
        if task.loss != "ce":
            raise ValueError("FF embeds a class label in the input: classification tasks only")
        self.running = [torch.zeros(lin.out_features, device=lin.weight.device) for lin in model.layers]
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cfg, net = self.cfg, self.model
        with torch.no_grad():
            out = net(x)  # the prediction scores before the update, for the harness's training curves
        wrong = (y + torch.randint(1, net.num_classes, y.shape, device=y.device)) % net.num_classes
        h_pos, h_neg = net.embed(x, y), net.embed(x, wrong)
        self.opt.zero_grad(set_to_none=False)
        losses = []
        for i, lin in enumerate(net.layers):
            # RULE: each layer sees a detached input: its loss reaches its own weights only
            h_pos = torch.relu(lin(length_normalise(h_pos.detach())))
            h_neg = torch.relu(lin(length_normalise(h_neg.detach())))
            theta = cfg.threshold * lin.out_features
            g_pos, g_neg = h_pos.pow(2).sum(1), h_neg.pow(2).sum(1)
            loss = F.softplus(-(g_pos - theta) / cfg.temperature).mean() + \
                F.softplus((g_neg - theta) / cfg.temperature).mean()
            if cfg.peer_norm > 0:
                m = cfg.peer_momentum * self.running[i] + (1 - cfg.peer_momentum) * h_pos.mean(0)
                loss = loss + cfg.peer_norm * (m.mean() - m).pow(2).mean()
                self.running[i] = m.detach()
            losses.append(loss)
        torch.stack(losses).sum().backward()
        self.opt.step()
        return out

    def extra_state(self) -> dict:
        return {"running": self.running}

    def load_extra_state(self, state: dict) -> None:
        self.running = [t.to(r.device) for t, r in zip(state["running"], self.running, strict=True)]


register_algorithm("ff", Config, supports=lambda arch: arch == "ff-mlp",
                   task_defaults={t: {"arch": "ff-mlp"} for t in ("mnist", "fashion-mnist")})(FF)
