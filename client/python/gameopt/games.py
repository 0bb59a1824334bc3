"""The Game a worker answers, and Python ports of the C++ sample games.

Conventions (proto/gameopt/v1/gameopt.proto, client/worker/game.h): every player
minimizes its own loss l_i(x); x, gradients and products are flat float64
numpy vectors in the layout of players() (see gameopt.tensors);
xi(x) = (grad_{x_1} l_1, ..., grad_{x_n} l_n) and J = d xi / d x.

The ports compute the same functions as client/games/{bilinear,dirac_gan,
quadratic}.h, with the same layouts, initial points and minibatch draws
(gameopt.sampling replicates the C++ random streams bit for bit).
"""

import abc
import math
from typing import List, Optional, Sequence

import numpy as np

from gameopt.sampling import RandomStream, slot_seed
from gameopt.tensors import PlayerSpec, TensorSpec


class Game(abc.ABC):
    """The oracle of one worker. Holds the minibatches it drew, so give each
    worker (thread or process) its own instance."""

    #: The default session name (the C++ games' name()).
    name = "game"

    @abc.abstractmethod
    def players(self) -> List[PlayerSpec]:
        """Players in session order, each with its tensors in order."""

    @abc.abstractmethod
    def initial_parameters(self) -> np.ndarray:
        """Where a session of this game starts (flat float64)."""

    def draw_minibatches(self, count: int, seed: int) -> None:
        """Draws `count` fresh minibatches (slots 0..count-1) from `seed`;
        called once per GRADIENT task, and the PRODUCTS task that follows
        refers to the same slots. Deterministic games keep the default."""

    @abc.abstractmethod
    def gradient(self, x: np.ndarray, sample: int) -> np.ndarray:
        """xi(x) on minibatch slot `sample`."""

    @abc.abstractmethod
    def vjp(self, x: np.ndarray, w: np.ndarray, sample: int) -> np.ndarray:
        """J(x)^T w on minibatch slot `sample` (every player's block)."""

    @abc.abstractmethod
    def jvp(self, x: np.ndarray, u: np.ndarray, sample: int) -> np.ndarray:
        """J(x) u on minibatch slot `sample`."""

    def loss_gradient(self, x: np.ndarray, player: int,
                      sample: int) -> np.ndarray:
        """grad_x l_player(x) on minibatch slot `sample`: one player's loss
        differentiated with respect to every player's parameters (block
        `player` is xi_player, the others the cross gradients), for the
        CROSS_GRADIENT tasks of LOLA and SOS. Games that cannot keep this
        default."""
        raise NotImplementedError(
            f"game {type(self).__name__} does not provide cross gradients "
            "(Game.loss_gradient: one player's loss differentiated with "
            "respect to every player's parameters), which LOLA and SOS ask "
            "for in CROSS_GRADIENT tasks; implement loss_gradient (TorchGame "
            "and BilinearGame do) or use another algorithm")

    @property
    def dimension(self) -> int:
        return sum(p.size for p in self.players())


def _random_orthogonal(d: int, seed: int) -> np.ndarray:
    """Q of the QR factorization of a Gaussian matrix (filled column by
    column from RandomStream(seed)), columns times the signs of R's diagonal:
    bilinear.cc's RandomOrthogonal, up to rounding (LAPACK vs Eigen)."""
    gaussian = RandomStream(seed).gaussian_matrix(d, d)
    q, r = np.linalg.qr(gaussian)
    # Both factorizations are unique once R's diagonal is made positive.
    q = q * np.sign(np.diag(r))
    return q


class BilinearGame(Game):
    """l_x = x^T A y = -l_y (client/games/bilinear.h). Players "x" and "y",
    one tensor each ("x" {d}, "y" {d}); x = y = 1 initially. d = 1: A = [[1]];
    d > 1: a Haar-random orthogonal A from `seed` (equal to the C++ one up to
    rounding), or pass `a` explicitly."""

    name = "bilinear"

    def __init__(self, d: int = 1, seed: int = 0,
                 a: Optional[np.ndarray] = None):
        if a is not None:
            a = np.asarray(a, dtype=np.float64)
            d = a.shape[0]
        elif d == 1:
            a = np.eye(1)
        else:
            a = _random_orthogonal(d, seed)
        if d < 1 or a.shape != (d, d):
            raise ValueError("the bilinear game needs a d x d matrix, d >= 1")
        self.d, self.a = d, a

    def players(self):
        return [PlayerSpec("x", [TensorSpec("x", (self.d,))]),
                PlayerSpec("y", [TensorSpec("y", (self.d,))])]

    def initial_parameters(self):
        return np.ones(2 * self.d)

    def gradient(self, x, sample):
        d = self.d
        return np.concatenate([self.a @ x[d:], -self.a.T @ x[:d]])

    def vjp(self, x, w, sample):
        d = self.d  # J^T = [[0, -A], [A^T, 0]]
        return np.concatenate([-self.a @ w[d:], self.a.T @ w[:d]])

    def jvp(self, x, u, sample):
        return self.gradient(u, sample)  # xi is linear: J u = xi(u)

    def loss_gradient(self, x, player, sample):
        d = self.d  # grad l_x = (A y, A^T x) = -grad l_y
        g = np.concatenate([self.a @ x[d:], self.a.T @ x[:d]])
        return g if player == 0 else -g


def _sigmoid(t: float) -> float:
    if t >= 0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


def _sign(value: float) -> float:
    return float((value > 0) - (value < 0))


class DiracGan(Game):
    """The Dirac-GAN of client/games/dirac_gan.h, every variant: "gan",
    "nsgan", "wgan", "wgan-gp", "r1", "instance-noise". Players "generator"
    (tensor "theta", shape ()) and "discriminator" ("psi", ()); starts at
    (1, 1). Instance noise draws the same minibatches as the C++ game."""

    VARIANTS = ("gan", "nsgan", "wgan", "wgan-gp", "r1", "instance-noise")

    def __init__(self, variant: str = "gan", penalty_weight: float = 1.0,
                 noise_std: float = 1.0, batch: int = 256):
        if variant not in self.VARIANTS:
            raise ValueError(f"unknown Dirac-GAN variant '{variant}' "
                             f"(expected one of {', '.join(self.VARIANTS)})")
        self.variant = variant
        self.name = f"dirac-{variant}"
        self.penalty_weight = penalty_weight
        self.noise_std = noise_std
        self.batch = batch
        self._minibatches = []

    def players(self):
        return [PlayerSpec("generator", [TensorSpec("theta", ())]),
                PlayerSpec("discriminator", [TensorSpec("psi", ())])]

    def initial_parameters(self):
        return np.array([1.0, 1.0])

    def draw_minibatches(self, count, seed):
        self._minibatches = []
        if self.variant != "instance-noise":
            return
        for slot in range(count):
            random = RandomStream(slot_seed(seed, slot))
            fake, real = [], []
            for _ in range(self.batch):
                fake.append(self.noise_std * random.gaussian())
                real.append(self.noise_std * random.gaussian())
            self._minibatches.append((fake, real))

    def _minibatch(self, sample):
        if self.variant != "instance-noise":
            return [0.0], [0.0]
        if not 0 <= sample < len(self._minibatches):
            raise IndexError("minibatch slot not drawn (draw_minibatches)")
        return self._minibatches[sample]

    def _activation(self):
        """f' and f'' of f(t) = -log(1 + exp(-t)), or of f(t) = t (WGAN)."""
        if self.variant in ("wgan", "wgan-gp"):
            return (lambda t: 1.0), (lambda t: 0.0)
        return (lambda t: _sigmoid(-t)), (lambda t: -_sigmoid(t) * _sigmoid(-t))

    def gradient(self, x, sample):
        theta, psi = float(x[0]), float(x[1])
        d1, _ = self._activation()
        fake, real = self._minibatch(sample)
        grad_theta = grad_psi = 0.0
        for noise, x_real in zip(fake, real):
            y = theta + noise
            grad_theta += (psi * d1(-psi * y) if self.variant == "nsgan"
                           else psi * d1(psi * y))
            grad_psi += -y * d1(psi * y) + x_real * d1(-psi * x_real)
        n = len(fake)
        grad_theta /= n
        grad_psi /= n
        if self.variant == "wgan-gp":
            grad_psi += 2 * self.penalty_weight * (psi - _sign(psi))
        elif self.variant == "r1":
            grad_psi += self.penalty_weight * psi
        return np.array([grad_theta, grad_psi])

    def jacobian(self, x, sample) -> np.ndarray:
        """The exact 2 x 2 Jacobian of xi: rows (generator, discriminator),
        columns (theta, psi)."""
        theta, psi = float(x[0]), float(x[1])
        d1, d2 = self._activation()
        fake, real = self._minibatch(sample)
        j00 = j01 = j10 = j11 = 0.0
        for noise, x_real in zip(fake, real):
            y = theta + noise
            if self.variant == "nsgan":
                j00 -= psi * psi * d2(-psi * y)
                j01 += d1(-psi * y) - psi * y * d2(-psi * y)
            else:
                j00 += psi * psi * d2(psi * y)
                j01 += d1(psi * y) + psi * y * d2(psi * y)
            j10 -= d1(psi * y) + psi * y * d2(psi * y)
            j11 -= y * y * d2(psi * y) + x_real * x_real * d2(-psi * x_real)
        jacobian = np.array([[j00, j01], [j10, j11]]) / len(fake)
        if self.variant == "wgan-gp":
            jacobian[1, 1] += 2 * self.penalty_weight
        elif self.variant == "r1":
            jacobian[1, 1] += self.penalty_weight
        return jacobian

    def vjp(self, x, w, sample):
        return self.jacobian(x, sample).T @ w

    def jvp(self, x, u, sample):
        return self.jacobian(x, sample) @ u


class QuadraticGame(Game):
    """l_i = 1/2 x^T A_i x + b_i^T x (client/games/quadratic.h), given by
    its field xi(x) = J x + b: players "p0", "p1", ... with tensor "x" of
    shape (d_i,); starts at x = 1. Deterministic (noise_std 0). Build it
    from J and b (exact, e.g. dumped by the C++ game) or from_seed (the C++
    construction, equal up to rounding)."""

    name = "quadratic"

    def __init__(self, dims: Sequence[int], jacobian, offset):
        self.dims = [int(d) for d in dims]
        self.J = np.asarray(jacobian, dtype=np.float64)
        self.b = np.asarray(offset, dtype=np.float64)
        n = sum(self.dims)
        if self.J.shape != (n, n) or self.b.shape != (n,):
            raise ValueError(f"J must be {n} x {n} and b of size {n}")

    @classmethod
    def from_seed(cls, dims: Sequence[int], seed: int) -> "QuadraticGame":
        """The construction of QuadraticGame(dims, seed) in quadratic.cc."""
        random = RandomStream(seed)
        total = sum(dims)
        offsets = np.cumsum([0] + list(dims))[:-1]
        jacobian = np.zeros((total, total))
        for o, d in zip(offsets, dims):
            g = random.gaussian_matrix(d, d)
            jacobian[o:o + d, o:o + d] = 0.5 * np.eye(d) + g @ g.T / d
        for i in range(len(dims)):
            for j in range(i + 1, len(dims)):
                c = random.gaussian_matrix(dims[i], dims[j]) / math.sqrt(total)
                oi, oj = offsets[i], offsets[j]
                jacobian[oi:oi + dims[i], oj:oj + dims[j]] = c
                jacobian[oj:oj + dims[j], oi:oi + dims[i]] = -c.T
        offset = np.zeros(total)
        for o, d in zip(offsets, dims):
            b_i = random.gaussian_matrix(total, 1)[:, 0]
            offset[o:o + d] = b_i[o:o + d]
        return cls(dims, jacobian, offset)

    def players(self):
        return [PlayerSpec(f"p{i}", [TensorSpec("x", (d,))])
                for i, d in enumerate(self.dims)]

    def initial_parameters(self):
        return np.ones(sum(self.dims))

    def gradient(self, x, sample):
        return self.J @ x + self.b

    def vjp(self, x, w, sample):
        return self.J.T @ w

    def jvp(self, x, u, sample):
        return self.J @ u

    def equilibrium(self) -> np.ndarray:
        return -np.linalg.solve(self.J, self.b)
