"""GameOptimizer's autograd work on the closure's graph: each player's own
gradient, and the Jacobian-vector products J^T w and J w on that
gradient's graph (no second forward pass)."""

from typing import List, Optional, Sequence

import torch

from gameopt.optim_players import Player


def own_gradients(player_list: Sequence[Player], losses, players,
                  create_graph: bool) -> List[Optional[torch.Tensor]]:
    """One entry per parameter of `player_list` (flat order): grad of its
    player's loss, for the parameters of the players named in `players`;
    None elsewhere or where unreached."""
    grads: List[Optional[torch.Tensor]] = [None] * sum(
        len(p.params) for p in player_list)
    # The last backward pass frees the graph (as in-process autograd
    # does) unless products follow on it (create_graph).
    last = max((k for k, p in enumerate(player_list)
                if p.name in players), default=-1)
    i = 0
    for k, player in enumerate(player_list):
        n = len(player.params)
        if player.name in players:
            loss = losses[player.name]
            live = [j for j, p in enumerate(player.params)
                    if p.requires_grad]
            if live and loss.requires_grad:
                got = torch.autograd.grad(
                    loss, [player.params[j] for j in live],
                    retain_graph=create_graph or k != last,
                    create_graph=create_graph, allow_unused=True)
                for j, g in zip(live, got):
                    grads[i + j] = g
        i += n
    return grads


def _like(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """`w` as a grad_output of `g`: its dtype, device and shape (autograd
    casts a gradient to the tensor's dtype anyway, so <g, w> in another
    dtype would differentiate to the same values)."""
    return w.to(dtype=g.dtype, device=g.device).view_as(g)


def graph_products(params: Sequence[torch.Tensor], grads, w, want_vjp: bool,
                   want_jvp: bool, retain: bool = True):
    """(J^T w, J w) on the gradient graph `grads` (one entry per
    parameter, built with create_graph=True); None entries are zeros.
    J^T w = grad_x <grads, w>, one backward pass with w as its
    grad_outputs (no graph of the inner product <grads, w> is built: that
    took about 13% of the pass at the MoG GAN's size); J w = d/dv <J^T v,
    w> at v = w (J^T v is linear in v), which gives J^T w as its value on
    the way. retain: keep the graph for later products (else it is
    freed)."""
    live = [i for i, g in enumerate(grads)
            if g is not None and g.requires_grad and w[i] is not None]
    trainable = [i for i, p in enumerate(params) if p.requires_grad]
    none = [None] * len(params)
    if not live or not trainable:
        return none, none
    v = {i: _like(w[i], grads[i]) for i in live}
    if want_jvp:
        v = {i: t.detach().clone().requires_grad_(True) for i, t in v.items()}
    got = torch.autograd.grad([grads[i] for i in live],
                              [params[i] for i in trainable],
                              grad_outputs=[v[i] for i in live],
                              retain_graph=retain or want_jvp,
                              create_graph=want_jvp, allow_unused=True)
    jtw = list(none)
    for i, g in zip(trainable, got):
        jtw[i] = g
    if not want_jvp:
        return jtw, none
    pairs = [i for i in trainable
             if jtw[i] is not None and jtw[i].requires_grad
             and w[i] is not None]
    jw = list(none)
    if pairs:
        got = torch.autograd.grad([jtw[i] for i in pairs],
                                  [v[i] for i in live],
                                  grad_outputs=[_like(w[i], jtw[i])
                                                for i in pairs],
                                  retain_graph=retain, allow_unused=True)
        for i, g in zip(live, got):
            jw[i] = g
    return [None if g is None else g.detach() for g in jtw], jw
