"""GameOptimizer's players: a mapping name -> nn.Module (or a list of
tensors), or torch-style parameter groups, each group a player."""

import dataclasses
from typing import Dict, List, Mapping

import torch

from gameopt.errors import unknown_option

GROUP_KEYS = {"params", "name", "lr", "learning_rate", "schedule",
              "clip_value"}


@dataclasses.dataclass
class Player:
    name: str
    tensor_names: List[str]
    params: List[torch.Tensor]


def players_from(players, per_player: Dict[str, Dict[str, object]]
                  ) -> List[Player]:
    """Players from a mapping name -> module/params or parameter groups."""
    out = []

    def named(obj, what):
        if isinstance(obj, torch.nn.Module):
            pairs = list(obj.named_parameters())
        elif isinstance(obj, torch.Tensor):
            pairs = [("p0", obj)]
        else:
            pairs = [(f"p{i}", p) for i, p in enumerate(obj)]
        if not pairs:
            raise ValueError(f"player '{what}' has no parameters")
        for _, p in pairs:
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"player '{what}': {type(p).__name__} is "
                                f"not a tensor")
        return pairs

    if isinstance(players, Mapping):
        for name, obj in players.items():
            pairs = named(obj, name)
            out.append(Player(name, [n for n, _ in pairs],
                               [p for _, p in pairs]))
    else:
        for i, group in enumerate(players):
            if not isinstance(group, Mapping) or "params" not in group:
                raise TypeError(f"parameter group {i}: expected a dict with "
                                f"'params' (and 'name', 'lr', ...)")
            for key in group:
                if key not in GROUP_KEYS:
                    raise unknown_option("parameter group key", key,
                                         GROUP_KEYS)
            name = group.get("name", f"player{i}")
            pairs = named(group["params"], name)
            out.append(Player(name, [n for n, _ in pairs],
                               [p for _, p in pairs]))
            per_player[name] = {k: v for k, v in group.items()
                                if k not in ("params", "name")}
    names = [p.name for p in out]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"a game needs >= 2 players with distinct names, "
                         f"got {names}")
    return out
