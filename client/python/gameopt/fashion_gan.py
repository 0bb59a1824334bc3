"""The Fashion-MNIST GAN as a gameopt game (TorchGame), its session
options, and the same training in-process with plain torch autograd (the
baseline the study compares gameopt against).

    data = GanData.load("stacked", shard_index=0, num_shards=1)
    game = make_game(GanConfig(dataset="stacked"), data)
    Worker(address, session_id, game).run()
    g, d, curve = train_in_process(GanConfig(...), data, steps=1000)

Minibatches: a task's seed s draws z ~ N(0, I) and `batch` real samples
(uniform with replacement, from this worker's shard of the 60,000 training
images; for "stacked", three independent draws per sample) with
numpy's default_rng(s) and torch's Generator seeded s.
"""

import dataclasses
import time
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch

from gameopt.fashion import load_fashion_mnist, sample_real, shard, \
    to_unit_range
from gameopt.fashion_models import SIZES, gan_losses, make_gan
from gameopt.sampling import MersenneTwister64
from gameopt.session import SessionOptions
from gameopt.torch import TorchGame

_SEED_MASK = 2 ** 63 - 1


@dataclasses.dataclass
class GanConfig:
    dataset: str = "stacked"      # "stacked" (3 channels) or "fashion" (1)
    size: str = "tiny"            # gameopt.fashion_models.SIZES
    batch: int = 32               # per worker and sample
    algorithm: str = "simgd"      # simgd or conopt
    optimizer: str = "adam"       # adam or rmsprop (PyTorch conventions)
    lr: float = 2e-4
    gamma: float = 10.0           # conopt
    adaptive_gamma: bool = False  # conopt: the server adapts gamma
    adaptive_gamma_every: int = 50        # steps between field estimates
    adaptive_gamma_max_applications: int = 40  # products per estimate
    estimator: str = "pooled"     # pooled or unbiased (conopt)
    workers: int = 1
    seed: int = 1                 # network init and session seed

    @property
    def channels(self) -> int:
        if self.dataset not in ("stacked", "fashion"):
            raise ValueError(f"dataset must be 'stacked' or 'fashion', not "
                             f"'{self.dataset}'")
        return 3 if self.dataset == "stacked" else 1

    @property
    def z_dim(self) -> int:
        return SIZES[self.size].z_dim

    def session_options(self, steps: int, name: str = "fashion-gan"
                        ) -> SessionOptions:
        """The gameopt session of this configuration. The unbiased
        estimator needs two samples per round: one worker submits two
        minibatch gradients (samples_per_worker 2)."""
        samples = 2 if (self.estimator == "unbiased" and self.workers == 1) \
            else 1
        return SessionOptions(
            name=name, algorithm=self.algorithm, optimizer=self.optimizer,
            learning_rate=self.lr,
            gamma=self.gamma if self.algorithm == "conopt" else None,
            adaptive_gamma=self.adaptive_gamma,
            adaptive_gamma_every=self.adaptive_gamma_every,
            adaptive_gamma_max_applications=(
                self.adaptive_gamma_max_applications),
            estimator=self.estimator, workers=self.workers,
            samples_per_worker=samples, max_steps=steps, seed=self.seed,
            phase_deadline_seconds=600.0,
            # float64 sessions (the study's): the server's optimizer state
            # and the wire in double, whatever SessionOptions' default is.
            float64=True)


class GanData:
    """A worker's training images (N x 1 x 28 x 28 in [-1, 1]) and labels."""

    def __init__(self, dataset: str, images: np.ndarray, labels: np.ndarray):
        self.dataset = dataset
        self.images = images
        self.labels = labels
        self.channels = 3 if dataset == "stacked" else 1

    @classmethod
    def load(cls, dataset: str, shard_index: int = 0, num_shards: int = 1,
             limit: Optional[int] = None) -> "GanData":
        """Shard `shard_index` of `num_shards` of the training set (of its
        first `limit` images when given)."""
        images, labels = load_fashion_mnist("train")
        if limit:
            images, labels = images[:limit], labels[:limit]
        picks = shard(len(images), shard_index, num_shards)
        return cls(dataset, to_unit_range(images[picks]), labels[picks])

    def minibatch(self, seed: int, batch: int, z_dim: int
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(z, real) of the task seed `seed`."""
        rng = np.random.default_rng(seed & _SEED_MASK)
        real = sample_real(self.images, self.labels, self.channels, rng,
                           batch)
        z = torch.randn(batch, z_dim,
                        generator=torch.Generator().manual_seed(
                            seed & _SEED_MASK))
        return z, torch.from_numpy(np.ascontiguousarray(real))


def make_game(config: GanConfig, data: GanData,
              device: str = "cpu") -> TorchGame:
    """The TorchGame: players "generator" and "discriminator", tensors
    named as the modules' parameters (e.g. "project.weight"); the modules
    and each minibatch on `device` (e.g. "cuda")."""
    g, d = make_gan(config.size, config.channels, config.seed)
    g, d = g.to(device), d.to(device)

    def losses(minibatch):
        z, real = minibatch
        return gan_losses(g, d, z.to(device), real.to(device))

    return TorchGame(
        {"generator": g, "discriminator": d}, losses,
        sample_batch=lambda s: data.minibatch(s, config.batch,
                                              config.z_dim))


def _optimizer(config: GanConfig, params) -> torch.optim.Optimizer:
    """The server's base optimizers have PyTorch's constants (Adam betas
    0.9, 0.999, eps 1e-8; RMSProp alpha 0.99, eps 1e-8)."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr)
    raise ValueError(f"optimizer must be adam or rmsprop, not "
                     f"'{config.optimizer}'")


def train_in_process(config: GanConfig, data: GanData, steps: int,
                     snapshot_steps: Optional[List[int]] = None,
                     on_snapshot: Optional[Callable] = None,
                     device: str = "cpu"):
    """Trains (G, D) for `steps` steps with plain autograd in this process:
    simgd (both players' own gradients xi at once) or ConOpt on one
    minibatch (g = xi + gamma J^T xi, J^T xi = grad of ||xi||^2 / 2: the
    local estimator, which is the pooled one for one sample). Calls
    on_snapshot(step, seconds, g, d) at each step in snapshot_steps
    (seconds: training time so far, snapshots not counted). The networks
    and minibatches live on `device` (e.g. "cuda"). Returns (g, d,
    seconds)."""
    if config.workers != 1:
        raise ValueError("the in-process baseline is one worker")
    if config.algorithm not in ("simgd", "conopt"):
        raise ValueError(f"in-process algorithm must be simgd or conopt, "
                         f"not '{config.algorithm}'")
    g, d = make_gan(config.size, config.channels, config.seed)
    g, d = g.to(device), d.to(device)
    players = [list(g.parameters()), list(d.parameters())]
    params = players[0] + players[1]
    optimizer = _optimizer(config, params)
    seeds = MersenneTwister64(config.seed)
    wanted = set(snapshot_steps or [])
    conopt = config.algorithm == "conopt"
    seconds, start = 0.0, time.time()
    for step in range(steps + 1):
        if step in wanted and on_snapshot is not None:
            seconds += time.time() - start
            on_snapshot(step, seconds, g, d)
            start = time.time()
        if step == steps:
            break
        z, real = data.minibatch(seeds(), config.batch,
                                 config.z_dim)
        losses = gan_losses(g, d, z.to(device), real.to(device))
        xi = []
        for loss, own in zip((losses["generator"], losses["discriminator"]),
                             players):
            xi += torch.autograd.grad(loss, own, retain_graph=True,
                                      create_graph=conopt)
        if conopt:
            # J^T xi (the gradient of ||xi||^2 / 2) in one backward pass
            # with xi as grad_outputs, as GameOptimizer's workers do.
            jtxi = torch.autograd.grad(xi, params,
                                       grad_outputs=[v.detach() for v in xi])
            direction = [v.detach() + config.gamma * j
                         for v, j in zip(xi, jtxi)]
        else:
            direction = xi
        for p, v in zip(params, direction):
            p.grad = v.detach()
        optimizer.step()
    seconds += time.time() - start
    return g, d, seconds
