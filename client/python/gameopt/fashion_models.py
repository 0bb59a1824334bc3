"""DCGAN-style generator and discriminator for 28 x 28 Fashion-MNIST (1
channel) or Stacked Fashion-MNIST (3 channels), and the classifier whose
features the metrics use (gameopt.fashion_metrics).

Sizes (GanSize): "tiny" (z 32, width 8: G 28k, D 3.2k parameters for 3
channels; about 0.1 s a simultaneous step and 0.5 s a ConOpt step of batch
32 on one busy CPU core) runs hundreds to thousands of steps in minutes on
2 CPU cores; "gpu" (z 128, width 64: G 0.94M, D 0.14M parameters, 8.6 MB
per float64 vector: over gRPC's 4 MiB default, within the server's and the
Python client's --max_message_mb 1024) is the size for a GPU (not run
here: this machine has none; `python3 -m gameopt.fashion_worker --device
it). The layout scales with
width w:

  G: z -> Linear(z, 2w*7*7) -> ReLU -> ConvT(2w, w, 4, 2, 1) -> ReLU
       -> ConvT(w, C, 4, 2, 1) -> tanh                       (7 -> 14 -> 28)
  D: x -> Conv(C, w, 4, 2, 1) -> LeakyReLU(0.2) -> Conv(w, 2w, 4, 2, 1)
       -> LeakyReLU(0.2) -> Linear(2w*7*7, 1)                  (28 -> 14 -> 7)

No BatchNorm, in either network, on purpose: its running mean and variance
are buffers, not parameters, so the server never sees them. Every worker's
forward pass would update its own copy (K workers -> K diverging
statistics), a restarted worker would start from fresh ones, and the
evaluation process would have none; and in D a batch statistic couples the
samples of a minibatch, so real and fake batches normalized apart change
the game. ConOpt's double backprop works through BatchNorm, the buffers are
the problem. Without it every quantity a worker computes is a function of
the server's parameters and the minibatch alone.
"""

import dataclasses
from typing import Dict

import torch
from torch import nn

from gameopt.fashion import NUM_CLASSES, SIDE


@dataclasses.dataclass(frozen=True)
class GanSize:
    z_dim: int
    width: int


SIZES: Dict[str, GanSize] = {
    "tiny": GanSize(z_dim=32, width=8),
    "gpu": GanSize(z_dim=128, width=64),
}

_QUARTER = SIDE // 4  # 7


class Generator(nn.Module):
    def __init__(self, size: GanSize, channels: int):
        super().__init__()
        w = size.width
        self.z_dim = size.z_dim
        self.project = nn.Linear(size.z_dim, 2 * w * _QUARTER * _QUARTER)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 4, 2, 1)
        self.up2 = nn.ConvTranspose2d(w, channels, 4, 2, 1)
        self._width = w

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.project(z))
        h = h.view(-1, 2 * self._width, _QUARTER, _QUARTER)
        h = torch.relu(self.up1(h))
        return torch.tanh(self.up2(h))


class Discriminator(nn.Module):
    def __init__(self, size: GanSize, channels: int):
        super().__init__()
        w = size.width
        self.down1 = nn.Conv2d(channels, w, 4, 2, 1)
        self.down2 = nn.Conv2d(w, 2 * w, 4, 2, 1)
        self.out = nn.Linear(2 * w * _QUARTER * _QUARTER, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.down1(x), 0.2)
        h = nn.functional.leaky_relu(self.down2(h), 0.2)
        return self.out(h.flatten(1)).squeeze(1)


def make_gan(size: str, channels: int, seed: int):
    """(G, D) float32, initialized from `seed` (PyTorch's default init)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, not '{size}'")
    torch.manual_seed(seed)
    return (Generator(SIZES[size], channels),
            Discriminator(SIZES[size], channels))


def gan_losses(g: nn.Module, d: nn.Module, z: torch.Tensor,
               real: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Both players minimize: D the cross-entropy, G the non-saturating
    loss -log sigma(D(G(z)))."""
    softplus = nn.functional.softplus
    fake_logits = d(g(z))
    real_logits = d(real)
    return {
        "generator": softplus(-fake_logits).mean(),
        "discriminator": softplus(-real_logits).mean()
                         + softplus(fake_logits).mean(),
    }


class Classifier(nn.Module):
    """The metric network: two conv blocks, a 128-unit feature layer (the
    Frechet distance's space), 10 logits. Input 1 x 28 x 28 in [-1, 1]."""

    feature_dim = 128

    def __init__(self, width: int = 16, feature_dim: int = 128):
        super().__init__()
        self.feature_dim = feature_dim
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * _QUARTER * _QUARTER, feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.logits = nn.Linear(feature_dim, NUM_CLASSES)
        self.width = width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        h = nn.functional.max_pool2d(torch.relu(self.conv2(h)), 2)
        return torch.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.dropout(self.features(x)))
