"""What a GameOptimizer closure returns: a mapping whose keys naming
players are their losses (scalar tensors) and whose other keys are the
user's scalars (numbers or one-element tensors), reported to the server
(SubmitGradientRequest.scalars: names [A-Za-z0-9_.:/-]{1,128}, at most 64
entries with the losses as "loss/<player>")."""

from typing import Dict, Mapping, Sequence, Tuple

import torch

SCALAR_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_.:/-")


def scalar_value(value) -> float:
    """A number, or a one-element tensor, as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"a scalar tensor is needed, got shape "
                             f"{tuple(value.shape)}")
        return float(value.detach())
    return float(value)


def split_closure_result(out, player_names: Sequence[str]
                         ) -> Tuple[Dict[str, torch.Tensor], Dict[str, float]]:
    """(player -> loss, name -> scalar) of a closure's result; TypeError,
    KeyError or ValueError naming what is wrong."""
    if not isinstance(out, Mapping):
        raise TypeError(f"the closure must return a dict of the players' "
                        f"losses ({', '.join(player_names)}) and "
                        f"optional scalars, got {type(out).__name__}")
    missing = [n for n in player_names if n not in out]
    if missing:
        given = sorted(str(k) for k in out)
        raise KeyError(f"the closure returned no loss for player(s) "
                       f"{', '.join(missing)} (it returned "
                       f"{', '.join(given) or 'nothing'}; players: "
                       f"{', '.join(player_names)})")
    losses = {n: out[n] for n in player_names}
    for name, loss in losses.items():
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"the loss of player '{name}' must be a "
                            f"scalar tensor, got {type(loss).__name__}"
                            f"{tuple(getattr(loss, 'shape', ()))}")
    scalars = {}
    for name, value in out.items():
        if name in losses:
            continue
        if not isinstance(name, str) or not 1 <= len(name) <= 128 or \
                not set(name) <= SCALAR_CHARS:
            raise ValueError(f"scalar name {name!r}: use 1-128 of "
                             f"[A-Za-z0-9_.:/-]")
        scalars[name] = scalar_value(value)
    if len(scalars) + len(losses) > 64:
        raise ValueError(f"at most {64 - len(losses)} scalars besides "
                         f"the losses, got {len(scalars)}")
    return losses, scalars
