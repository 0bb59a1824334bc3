"""Evaluating a Fashion-MNIST generator: Frechet distance (and, stacked,
modes and KL) against the 10,000 test images, sample grids and metric
curves as PNG.

    evaluator = Evaluator(classifier, channels=3)
    metrics = evaluator.evaluate(g, n=10000)  # {"fd":..., "modes":..., "kl":...}

For Stacked Fashion-MNIST the Frechet distance is the mean over the three
channels of the distance between channel c of the n generated samples and
the 10,000 real test images (every channel is a Fashion-MNIST image).
"""

import os
from typing import Dict, List, Optional

import numpy as np
import torch

from gameopt.fashion import load_fashion_mnist, to_unit_range
from gameopt.fashion_metrics import feature_statistics, \
    features_and_classes, frechet_distance, gaussian, modes_and_kl

EVAL_SEED = 12345  # fixed z: metrics comparable across steps and runs


class Evaluator:
    def __init__(self, classifier, channels: int,
                 real: Optional[np.ndarray] = None):
        """real: N x 1 x 28 x 28 reference images in [-1, 1] (default the
        10,000 test images)."""
        self.classifier = classifier
        self.channels = channels
        if real is None:
            real = to_unit_range(load_fashion_mnist("test")[0])
        self.reference = feature_statistics(classifier, real)

    @torch.no_grad()
    def generate(self, g, n: int, seed: int = EVAL_SEED) -> np.ndarray:
        z = torch.randn(n, g.z_dim, generator=torch.Generator().manual_seed(
            seed))
        return np.concatenate([g(z[i:i + 1000]).numpy()
                               for i in range(0, n, 1000)])

    def evaluate(self, g, n: int) -> Dict[str, float]:
        """One forward pass of the classifier over every generated channel
        gives both the features and the classes."""
        fake = self.generate(g, n)
        feats, classes = features_and_classes(self.classifier, fake)
        feats = feats.reshape(n, self.channels, -1)
        distances = [frechet_distance(*self.reference,
                                      *gaussian(feats[:, c]))
                     for c in range(self.channels)]
        out = {"fd": float(np.mean(distances)), "samples": n}
        if self.channels == 3:
            out["modes"], out["kl"] = modes_and_kl(classes)
        return out


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_grid(images: np.ndarray, path: str, title: str = "",
              rows: int = 8) -> None:
    """N x C x 28 x 28 images in [-1, 1] (C 1 or 3) as a rows x rows grid."""
    plt = _plt()
    n = min(len(images), rows * rows)
    x = (np.clip(images[:n], -1, 1) + 1) / 2
    side = x.shape[2]
    grid = np.ones((rows * (side + 2), rows * (side + 2), x.shape[1]))
    for i in range(n):
        r, c = divmod(i, rows)
        grid[r * (side + 2):r * (side + 2) + side,
             c * (side + 2):c * (side + 2) + side] = x[i].transpose(1, 2, 0)
    figure = plt.figure(figsize=(5, 5.3))
    plt.imshow(grid[:, :, 0] if grid.shape[2] == 1 else grid,
               cmap="gray" if grid.shape[2] == 1 else None)
    plt.axis("off")
    plt.title(title, fontsize=9)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def plot_curves(runs: Dict[str, List[dict]], path: str, x: str = "step",
                title: str = "") -> None:
    """runs: label -> curve points ({"step", "seconds", "fd"[, "modes"]});
    Frechet distance (and modes when present) against `x`."""
    plt = _plt()
    with_modes = any("modes" in p for c in runs.values() for p in c)
    figure, axes = plt.subplots(1, 2 if with_modes else 1,
                                figsize=(11 if with_modes else 6, 4),
                                squeeze=False)
    for label, curve in runs.items():
        xs = [p[x] for p in curve]
        axes[0][0].plot(xs, [p["fd"] for p in curve], marker=".",
                        label=label)
        if with_modes:
            axes[0][1].plot(xs, [p.get("modes", np.nan) for p in curve],
                            marker=".", label=label)
    axes[0][0].set_ylabel("Frechet distance (classifier features)")
    axes[0][0].set_yscale("log")
    if with_modes:
        axes[0][1].set_ylabel("modes covered (of 1000)")
    for a in axes[0]:
        a.set_xlabel("wall seconds" if x == "seconds" else x)
        a.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
