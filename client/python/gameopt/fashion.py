"""Fashion-MNIST and Stacked Fashion-MNIST, from Debian's
`dataset-fashion-mnist` package (tests/install_deps.sh installs it).

    images, labels = load_fashion_mnist("train")   # uint8 N x 28 x 28, N
    x = to_unit_range(images)                       # float32 in [-1, 1]
    stacked = StackedFashion(x, labels, seed=0)
    batch, modes = stacked.sample(np.random.default_rng(1), 64)

The package ships the four idx files of the original release, gzipped, under
/usr/share/datasets/fashion-mnist; the loader also reads them unzipped and
from any directory given (or $GAMEOPT_FASHION_MNIST_DIR).

Stacked Fashion-MNIST follows the stacked-MNIST protocol of the
mode-collapse literature (unrolled GANs, VEEGAN, PacGAN): one sample is three
independently drawn images as the three channels of a 3 x 28 x 28 image; its
mode is the triple of their classes, 10^3 = 1,000 modes, uniform in the
data. A generator's mode histogram is measured by classifying each channel
(gameopt.fashion_metrics).
"""

import gzip
import os
from typing import Optional, Sequence, Tuple

import numpy as np

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
DIR_ENV = "GAMEOPT_FASHION_MNIST_DIR"
NUM_CLASSES = 10
SIDE = 28
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4",
              0x0D: ">f4", 0x0E: ">f8"}


class FashionMnistMissing(FileNotFoundError):
    """The idx files are not where they were looked for."""


def data_dir(directory: Optional[str] = None) -> str:
    """`directory`, else $GAMEOPT_FASHION_MNIST_DIR, else Debian's path."""
    return directory or os.environ.get(DIR_ENV) or DEFAULT_DIR


def _find(directory: str, stem: str) -> str:
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FashionMnistMissing(
        f"Fashion-MNIST file {stem}[.gz] not found in {directory}: install "
        f"Debian's '{DEBIAN_PACKAGE}' package (apt-get install "
        f"{DEBIAN_PACKAGE}, or tests/install_deps.sh), or point ${DIR_ENV} "
        f"at a directory holding the idx files")


def read_idx(path: str) -> np.ndarray:
    """One idx file (gzipped when its name ends in .gz) as an array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an idx file (bad magic)")
    kind, ndim = data[2], data[3]
    if kind not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown idx element type 0x{kind:02x}")
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
                  for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[kind])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: {len(data) - header} bytes of data for "
                         f"shape {shape} ({expected} expected)")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def load_fashion_mnist(split: str = "train",
                       directory: Optional[str] = None
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 N x 28 x 28, labels int64 N) of split 'train' (60,000)
    or 'test' (10,000). Raises FashionMnistMissing naming the Debian package
    when the files are absent."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', not '{split}'")
    directory = data_dir(directory)
    image_stem, label_stem = _FILES[split]
    images = read_idx(_find(directory, image_stem))
    labels = read_idx(_find(directory, label_stem)).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"{split} images have shape {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    return images, labels


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [-1, 1] with a channel axis: N x 1 x 28 x
    28 (the generator's tanh range)."""
    x = images.astype(np.float32) / 127.5 - 1.0
    return x[:, None, :, :] if x.ndim == 3 else x


def shard(count: int, index: int, num_shards: int) -> np.ndarray:
    """Indices [floor(index n / S), floor((index + 1) n / S)) of n = count:
    worker `index` of `num_shards` trains on its own contiguous slice (as
    the Indexed Job's completion index selects)."""
    if not 0 <= index < num_shards:
        raise ValueError(f"shard index {index} not in [0, {num_shards})")
    return np.arange(count * index // num_shards,
                     count * (index + 1) // num_shards)


class StackedFashion:
    """Samples of Stacked Fashion-MNIST from images x (N x 1 x 28 x 28,
    any range) with labels: three independent uniform draws as channels."""

    channels = 3
    num_modes = NUM_CLASSES ** 3

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be N x 1 x H x W, not "
                             f"{images.shape}")
        self.images = images
        self.labels = labels

    def sample(self, rng: np.random.Generator, n: int
               ) -> Tuple[np.ndarray, np.ndarray]:
        """(n x 3 x 28 x 28 images, n modes in [0, 1000))."""
        picks = rng.integers(0, len(self.images), size=(n, 3))
        x = self.images[picks, 0]            # n x 3 x 28 x 28
        return x, mode_of(self.labels[picks])


def mode_of(classes: np.ndarray) -> np.ndarray:
    """n x 3 channel classes -> mode 100 c0 + 10 c1 + c2 in [0, 1000)."""
    classes = np.asarray(classes)
    return classes[:, 0] * 100 + classes[:, 1] * 10 + classes[:, 2]


def sample_real(images: np.ndarray, labels: np.ndarray, channels: int,
                rng: np.random.Generator, n: int) -> np.ndarray:
    """n real samples of the dataset with `channels` channels (1: plain
    Fashion-MNIST, 3: stacked), drawn uniformly with replacement."""
    if channels == 1:
        return images[rng.integers(0, len(images), size=n)]
    if channels == 3:
        return StackedFashion(images, labels).sample(rng, n)[0]
    raise ValueError(f"channels must be 1 or 3, not {channels}")


def installed_paths(directory: Optional[str] = None) -> Sequence[str]:
    """The four idx files (raises FashionMnistMissing if one is absent)."""
    directory = data_dir(directory)
    return [_find(directory, stem) for pair in _FILES.values()
            for stem in pair]
