"""Image-GAN metrics computed by the project itself, with no downloaded
weights: a Fashion-MNIST classifier trained here (train_classifier, cached
by load_or_train_classifier under ~/.cache/gameopt), the Frechet distance in
its 128-d penultimate features ("FID" with our classifier in place of
Inception: numbers are comparable only with each other), and for Stacked
Fashion-MNIST the modes covered out of 1,000 and KL(generated modes ||
uniform), each channel classified apart.

    clf, acc = load_or_train_classifier()
    ref = reference_statistics(clf, real_images)       # mean, covariance
    fd = frechet_distance(*ref, *feature_statistics(clf, fake_images))
    covered, kl = mode_statistics(clf, stacked_fake_images)
"""

import os
import time
from typing import Optional, Tuple

import numpy as np
import torch

from gameopt.fashion import NUM_CLASSES, load_fashion_mnist, mode_of, \
    to_unit_range
from gameopt.fashion_models import Classifier

CACHE_ENV = "GAMEOPT_CACHE_DIR"
CLASSIFIER_FILE = "fashion_classifier.pt"
EVAL_BATCH = 1000
LOCK_POLL_S = 2.0


def cache_dir() -> str:
    return os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "gameopt")


def train_classifier(images: np.ndarray, labels: np.ndarray, epochs: int = 3,
                     batch: int = 128, lr: float = 1e-3, width: int = 16,
                     seed: int = 0, log=print) -> Classifier:
    """Trains the classifier on images (N x 1 x 28 x 28 in [-1, 1]) with
    Adam and horizontal-flip augmentation; returns it in eval mode."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Classifier(width)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels)
    steps_per_epoch = max(1, len(images) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr * 3, total_steps=epochs * steps_per_epoch)
    model.train()
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(images)))
        start, total = time.time(), 0.0
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            x, y = x_all[idx], y_all[idx]
            flip = torch.rand(len(x)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss)
        if log:
            log(f"classifier epoch {epoch + 1}/{epochs}: loss "
                f"{total / steps_per_epoch:.4f} ({time.time() - start:.0f}s)")
    model.eval()
    return model


@torch.no_grad()
def accuracy(model: Classifier, images: np.ndarray,
             labels: np.ndarray) -> float:
    predicted = classify(model, images)
    return float(np.mean(predicted == labels))


@torch.no_grad()
def classify(model: Classifier, images: np.ndarray) -> np.ndarray:
    """Predicted classes of N x 1 x 28 x 28 images."""
    out = []
    for i in range(0, len(images), EVAL_BATCH):
        x = torch.as_tensor(images[i:i + EVAL_BATCH], dtype=torch.float32)
        out.append(model(x).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def load_or_train_classifier(path: Optional[str] = None, epochs: int = 5,
                             width: int = 16, train_limit: int = 0,
                             log=print) -> Tuple[Classifier, float]:
    """(classifier, its test accuracy): loaded from `path` (default
    cache_dir()/fashion_classifier.pt) or trained on the 60,000 training
    images (the first train_limit when > 0: a quick one for tests), tested
    on the 10,000 test images and saved there. One process trains, others
    wait: PATH.lock holds its pid while it does (a lock whose process is
    gone, e.g. killed, is removed)."""
    path = path or os.path.join(cache_dir(), CLASSIFIER_FILE)
    lock = path + ".lock"
    waited = False
    while not os.path.exists(path) and os.path.exists(lock):
        if not _lock_holder_alive(lock):
            if log:
                log(f"removing {lock}: its process is gone")
            try:
                os.remove(lock)
            except FileNotFoundError:
                pass
            break
        if not waited and log:
            log(f"waiting for another process to train {path} (remove "
                f"{lock} if none is)")
        waited = True
        time.sleep(LOCK_POLL_S)
    if os.path.exists(path):
        saved = torch.load(path)
        model = Classifier(saved["width"], saved["feature_dim"])
        model.load_state_dict(saved["state"])
        model.eval()
        return model, float(saved["test_accuracy"])
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        with open(lock, "x") as f:
            f.write(f"{os.getpid()}\n")
    except FileExistsError:  # another process just began: wait for it
        return load_or_train_classifier(path, epochs, width, train_limit,
                                        log)
    try:
        return _train_and_save(path, epochs, width, train_limit, log)
    finally:
        os.remove(lock)


def _lock_holder_alive(lock: str) -> bool:
    """Whether the process named in `lock` (its pid, this machine) still
    runs; a lock without a readable pid counts as held."""
    try:
        with open(lock) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _train_and_save(path, epochs, width, train_limit, log):
    images, labels = load_fashion_mnist("train")
    if train_limit > 0:
        images, labels = images[:train_limit], labels[:train_limit]
    model = train_classifier(to_unit_range(images), labels, epochs=epochs,
                             width=width, log=log)
    test_images, test_labels = load_fashion_mnist("test")
    acc = accuracy(model, to_unit_range(test_images), test_labels)
    tmp = path + ".tmp"
    torch.save({"width": model.width, "feature_dim": model.feature_dim,
                "state": model.state_dict(), "test_accuracy": acc,
                "epochs": epochs}, tmp)
    os.replace(tmp, path)
    if log:
        log(f"classifier test accuracy {acc:.4f}, saved to {path}")
    return model, acc


@torch.no_grad()
def features(model: Classifier, images: np.ndarray) -> np.ndarray:
    """Penultimate features (N x 128, float64) of N x C x 28 x 28 images;
    with C > 1 each channel is one image: (N*C) x 128, channel-major per
    sample."""
    images = np.asarray(images, dtype=np.float32)
    flat = images.reshape(-1, 1, *images.shape[2:])
    out = []
    for i in range(0, len(flat), EVAL_BATCH):
        out.append(model.features(torch.from_numpy(
            flat[i:i + EVAL_BATCH])).double().numpy())
    return np.concatenate(out)


@torch.no_grad()
def features_and_classes(model: Classifier, images: np.ndarray
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """features() and the predicted classes of the same channel images,
    from one forward pass."""
    images = np.asarray(images, dtype=np.float32)
    flat = images.reshape(-1, 1, *images.shape[2:])
    feats, classes = [], []
    for i in range(0, len(flat), EVAL_BATCH):
        f = model.features(torch.from_numpy(flat[i:i + EVAL_BATCH]))
        feats.append(f.double().numpy())
        classes.append(model.logits(f).argmax(1).numpy())
    return np.concatenate(feats), np.concatenate(classes)


def gaussian(f: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of feature rows f."""
    return f.mean(axis=0), np.cov(f, rowvar=False)


def feature_statistics(model: Classifier, images: np.ndarray
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the features of `images`."""
    f = features(model, images)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigh)."""
    values, vectors = np.linalg.eigh((a + a.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)) between two
    Gaussians. tr (C1 C2)^(1/2) = tr (C1^(1/2) C2 C1^(1/2))^(1/2): the
    symmetric form, so two eigh calls do it (no scipy.linalg.sqrtm)."""
    root1 = _sqrt_psd(cov1)
    middle = _sqrt_psd(root1 @ cov2 @ root1)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2)
                 - 2 * np.trace(middle))


def mode_statistics(model: Classifier, stacked: np.ndarray
                    ) -> Tuple[int, float]:
    """(modes covered out of 1,000, KL(histogram || uniform) in nats) of
    N x 3 x 28 x 28 stacked images; a mode is covered by >= 1 sample (the
    stacked-MNIST protocol). KL = sum p log(p * 1000) over p > 0; 0 for
    a perfectly uniform histogram, log 1000 = 6.91 for one mode."""
    if stacked.ndim != 4 or stacked.shape[1] != 3:
        raise ValueError(f"stacked images must be N x 3 x 28 x 28, not "
                         f"{stacked.shape}")
    return modes_and_kl(classify(
        model, stacked.reshape(-1, 1, *stacked.shape[2:])))


def modes_and_kl(classes: np.ndarray) -> Tuple[int, float]:
    """mode_statistics from the classes of the channels, sample-major
    (N*3, channel 0, 1, 2 of sample 0 first)."""
    modes = mode_of(np.asarray(classes).reshape(-1, 3))
    num_modes = NUM_CLASSES ** 3
    counts = np.bincount(modes, minlength=num_modes)
    p = counts / counts.sum()
    nonzero = p > 0
    kl = float(np.sum(p[nonzero] * np.log(p[nonzero] * num_modes)))
    return int(nonzero.sum()), kl
