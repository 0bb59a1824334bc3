"""Learning-rate schedules shaped like torch.optim.lr_scheduler.

The server applies them (OptimizerConfig.schedule), so a checkpoint keeps
the schedule and a restored session continues it. Each is stepped once per
completed step, as a torch loop that calls scheduler.step() after every
optimizer.step(); the constructors take torch's arguments without the
optimizer:

    opt = GameOptimizer(server, players, lr=1e-3,
                        schedule=CosineAnnealingLR(T_max=5000))
    # or per player: schedule={"generator": StepLR(1000, 0.5)}

`lr(lr0, t)` is the closed form the server computes (for plots and tests).
"""

import math
from typing import Sequence

from gameopt._stubs import pb

_Kind = pb.LearningRateSchedule


class Schedule:
    def to_proto(self) -> "pb.LearningRateSchedule":
        raise NotImplementedError

    def lr(self, lr0: float, t: int) -> float:
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _positive_int(what, value):
    if int(value) != value or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


class StepLR(Schedule):
    """lr0 * gamma^floor(t / step_size)."""

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = _positive_int("StepLR step_size", step_size)
        if gamma <= 0:
            raise ValueError(f"StepLR gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)

    def to_proto(self):
        return pb.LearningRateSchedule(kind=_Kind.STEP, gamma=self.gamma,
                                       step_size=self.step_size)

    def lr(self, lr0, t):
        return lr0 * self.gamma ** (t // self.step_size)


class MultiStepLR(Schedule):
    """lr0 * gamma^(number of milestones <= t)."""

    def __init__(self, milestones: Sequence[int], gamma: float = 0.1):
        self.milestones = [_positive_int("MultiStepLR milestone", m)
                           for m in milestones]
        if not self.milestones or any(
                b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"MultiStepLR milestones must be increasing and "
                             f"not empty, got {list(milestones)}")
        if gamma <= 0:
            raise ValueError(f"MultiStepLR gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)

    def to_proto(self):
        return pb.LearningRateSchedule(kind=_Kind.MULTI_STEP,
                                       gamma=self.gamma,
                                       milestones=self.milestones)

    def lr(self, lr0, t):
        return lr0 * self.gamma ** sum(1 for m in self.milestones if m <= t)


class ExponentialLR(Schedule):
    """lr0 * gamma^t."""

    def __init__(self, gamma: float):
        if gamma <= 0:
            raise ValueError(f"ExponentialLR gamma must be > 0, got {gamma}")
        self.gamma = float(gamma)

    def to_proto(self):
        return pb.LearningRateSchedule(kind=_Kind.EXPONENTIAL,
                                       gamma=self.gamma)

    def lr(self, lr0, t):
        return lr0 * self.gamma ** t


class CosineAnnealingLR(Schedule):
    """eta_min + (lr0 - eta_min) (1 + cos(pi t / T_max)) / 2 (the closed
    form of torch's CosineAnnealingLR)."""

    def __init__(self, T_max: int, eta_min: float = 0.0):  # noqa: N803
        self.T_max = _positive_int("CosineAnnealingLR T_max", T_max)
        if eta_min < 0:
            raise ValueError(f"CosineAnnealingLR eta_min must be >= 0, "
                             f"got {eta_min}")
        self.eta_min = float(eta_min)

    def to_proto(self):
        return pb.LearningRateSchedule(kind=_Kind.COSINE, t_max=self.T_max,
                                       eta_min=self.eta_min)

    def lr(self, lr0, t):
        return self.eta_min + (lr0 - self.eta_min) * (
            1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearLR(Schedule):
    """lr0 * (start_factor + (end_factor - start_factor) min(t, total_iters)
    / total_iters)."""

    def __init__(self, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR needs 0 < start_factor <= 1 and "
                             f"0 <= end_factor <= 1, got {start_factor}, "
                             f"{end_factor}")
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.total_iters = _positive_int("LinearLR total_iters", total_iters)

    def to_proto(self):
        return pb.LearningRateSchedule(
            kind=_Kind.LINEAR, start_factor=self.start_factor,
            end_factor=self.end_factor, total_steps=self.total_iters)

    def lr(self, lr0, t):
        return lr0 * (self.start_factor + (self.end_factor - self.start_factor)
                      * min(t, self.total_iters) / self.total_iters)
