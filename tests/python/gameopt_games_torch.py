"""A small GAN for the GameOptimizer tests: 2-d data, tiny MLPs."""

import torch
import torch.nn.functional as F

Z = 4


def make_players(dtype=torch.float32, seed=0, batchnorm=False):
    torch.manual_seed(seed)
    g = torch.nn.Sequential(torch.nn.Linear(Z, 8), torch.nn.Tanh(),
                            torch.nn.Linear(8, 2)).to(dtype)
    layers = [torch.nn.Linear(2, 8)]
    if batchnorm:
        layers.append(torch.nn.BatchNorm1d(8))
    layers += [torch.nn.Tanh(), torch.nn.Linear(8, 1)]
    d = torch.nn.Sequential(*layers).to(dtype)
    return g, d


def make_batches(count, size=16, dtype=torch.float32, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, Z, generator=gen, dtype=dtype),
             torch.randn(size, 2, generator=gen, dtype=dtype) + 1.0)
            for _ in range(count)]


def losses(g, d, batch):
    """Non-saturating GAN losses of (generator, discriminator)."""
    z, real = batch
    fake = g(z)
    d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
    g_loss = F.softplus(-d(fake)).mean()
    return g_loss, d_loss


class Feed:
    """A closure over a list of minibatches, one per call, counting calls."""

    def __init__(self, g, d, batches, record=False):
        self.g, self.d, self.batches, self.calls = g, d, batches, 0
        self.points = [] if record else None  # per call: the state dicts

    def __call__(self):
        if self.points is not None:
            self.points.append(({k: v.clone() for k, v in
                                 self.g.state_dict().items()},
                                {k: v.clone() for k, v in
                                 self.d.state_dict().items()}))
        batch = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        g_loss, d_loss = losses(self.g, self.d, batch)
        with torch.no_grad():
            fake_mean = self.g(batch[0]).mean()
        return {"generator": g_loss, "discriminator": d_loss,
                "fake_mean": fake_mean}
