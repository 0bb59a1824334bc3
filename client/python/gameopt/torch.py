"""PyTorch modules as players: exact xi, J^T w and J u by autograd.

    game = TorchGame({"generator": g, "discriminator": d},
                     losses=lambda batch: {"generator": l_g(batch),
                                           "discriminator": l_d(batch)},
                     sample_batch=lambda seed: draw(seed))
    Worker(address, session_id, game).run()

Player i's tensors are its module's parameters in named_parameters() order
(names as there, e.g. "0.weight", unless tensor_names renames them), each
row-major: nn.Linear's weight {out, in} is the server's {out, in}. All
parameters are in the layout; those a loss does not reach, or that do not
require grad, get zero gradients and products (never dropped).

Products (players minimize; l_i is player i's loss on one minibatch):
  xi   = (grad_{x_1} l_1, ..., grad_{x_n} l_n)
  J^T w = grad_x sum_i <w_i, grad_{x_i} l_i>     (double backprop)
  J u   = d/dv <J^T v, u>                         (the double-backward trick:
          J^T v is linear in a dummy v, so its gradient by v is J u)
computed exactly (torch.autograd.grad with create_graph=True), in the
modules' dtype (use float64 for exact comparisons).

With keep_graph set (gameopt.Worker sets it when the step's products will
follow on the same minibatch), gradient() keeps each sample's gradient
graph and vjp()/jvp() differentiate it again instead of recomputing the
forward pass.

GameOptimizer (gameopt.optim) is the torch.optim-shaped API over the same
products; it is re-exported here.
"""

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from gameopt.games import Game
from gameopt.optim_autograd import graph_products
from gameopt.sampling import slot_seed
from gameopt.tensors import FlatLayout, PlayerSpec, TensorSpec

Losses = Union[Mapping[str, Callable], Sequence[Callable], Callable]


class TorchGame(Game):
    """A Game over PyTorch modules.

    modules: player name -> nn.Module in session order, or a list of modules
      (players "player0", "player1", ...).
    losses: player name -> callable(batch) -> scalar loss (or a list in
      player order), or one callable(batch) returning a mapping/list of the
      players' losses (shares the forward pass between them).
    sample_batch: callable(seed) -> one minibatch (anything the losses
      take); slot k of draw_minibatches(count, seed) gets
      sample_batch(slot_seed(seed, k)), with slot_seed as in the C++ games.
    tensor_names: optional player -> list of the server's tensor names, one
      per parameter in named_parameters() order.
    """

    name = "torch"

    def __init__(self, modules, losses: Losses,
                 sample_batch: Optional[Callable[[int], object]] = None,
                 tensor_names: Optional[Mapping[str, Sequence[str]]] = None):
        if isinstance(modules, Mapping):
            self.modules: Dict[str, torch.nn.Module] = dict(modules)
        else:
            self.modules = {f"player{i}": m for i, m in enumerate(modules)}
        self.names: List[str] = list(self.modules)
        self._losses = losses
        self.sample_batch = sample_batch
        self._params: List[List[torch.nn.Parameter]] = []
        specs = []
        for name in self.names:
            named = list(self.modules[name].named_parameters())
            wanted = (list(tensor_names[name])
                      if tensor_names and name in tensor_names
                      else [n for n, _ in named])
            if len(wanted) != len(named):
                raise ValueError(f"player '{name}': {len(wanted)} tensor "
                                 f"names for {len(named)} parameters")
            self._params.append([p for _, p in named])
            specs.append(PlayerSpec(name, [
                TensorSpec(n, tuple(p.shape)) for n, (_, p) in
                zip(wanted, named)]))
        self._specs = specs
        self.layout = FlatLayout(specs)
        self._flat_params = [p for ps in self._params for p in ps]
        self._minibatches: List[object] = []
        self._loaded: Optional[np.ndarray] = None
        self.keep_graph = False
        self._graphs: Dict[int, list] = {}  # sample -> grads with graph

    # ------------------------------------------------------------ layout
    def players(self):
        return list(self._specs)

    def initial_parameters(self):
        return self.get_flat()

    def get_flat(self) -> np.ndarray:
        """The modules' parameters as one flat float64 vector."""
        if not self._flat_params:
            return np.zeros(0)
        return torch.cat([p.detach().reshape(-1).to(torch.float64).cpu()
                          for p in self._flat_params]).numpy()

    def set_flat(self, x: np.ndarray) -> None:
        """Copies the flat vector x into the modules' parameters."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.layout.dimension,):
            raise ValueError(f"x has {x.size} values, the game "
                             f"{self.layout.dimension}")
        offset = 0
        with torch.no_grad():
            for p in self._flat_params:
                n = p.numel()
                p.copy_(torch.from_numpy(x[offset:offset + n]).view_as(p))
                offset += n
        self._loaded = x.copy()
        self._graphs.clear()

    def _load(self, x: np.ndarray) -> None:
        if self._loaded is None or not np.array_equal(self._loaded, x):
            self.set_flat(x)

    def _to_tensors(self, v: np.ndarray) -> List[torch.Tensor]:
        """Flat float64 -> one tensor per parameter (params' dtype/device)."""
        out, offset = [], 0
        for p in self._flat_params:
            n = p.numel()
            out.append(torch.from_numpy(np.ascontiguousarray(
                v[offset:offset + n])).to(p.dtype).to(p.device).view_as(p))
            offset += n
        return out

    def _flatten(self, tensors: Sequence[Optional[torch.Tensor]]) -> np.ndarray:
        """One tensor (or None = zeros) per parameter -> flat float64."""
        parts = []
        for p, t in zip(self._flat_params, tensors):
            parts.append(np.zeros(p.numel()) if t is None else
                         t.detach().reshape(-1).to(torch.float64).cpu()
                         .numpy())
        return np.concatenate(parts) if parts else np.zeros(0)

    # ------------------------------------------------------------ losses
    def losses(self, batch) -> List[torch.Tensor]:
        """The players' losses on `batch`, in player order."""
        if callable(self._losses) and not isinstance(self._losses, Mapping):
            result = self._losses(batch)
            if isinstance(result, Mapping):
                return [result[name] for name in self.names]
            return list(result)
        if isinstance(self._losses, Mapping):
            return [self._losses[name](batch) for name in self.names]
        return [loss(batch) for loss in self._losses]

    def _own_gradients(self, batch, create_graph: bool):
        """Per player: grad_{x_i} l_i, one entry (or None) per parameter."""
        losses = self.losses(batch)
        grads = []
        for i, loss in enumerate(losses):
            params = self._params[i]
            trainable = [p for p in params if p.requires_grad]
            if not trainable or not loss.requires_grad:
                grads.append([None] * len(params))
                continue
            got = iter(torch.autograd.grad(
                loss, trainable, retain_graph=True, create_graph=create_graph,
                allow_unused=True))
            grads.append([next(got) if p.requires_grad else None
                          for p in params])
        return grads

    def _trainable(self):
        return [p for p in self._flat_params if p.requires_grad]

    def _grad_all(self, scalar, create_graph=False):
        """d scalar / d every parameter (None where unreached)."""
        trainable = self._trainable()
        if not trainable or not scalar.requires_grad:
            return [None] * len(self._flat_params)
        got = iter(torch.autograd.grad(scalar, trainable,
                                       create_graph=create_graph,
                                       retain_graph=True, allow_unused=True))
        return [next(got) if p.requires_grad else None
                for p in self._flat_params]

    # -------------------------------------------- products on a given batch
    def gradient_on(self, batch) -> np.ndarray:
        """xi at the modules' current parameters on `batch`."""
        grads = self._own_gradients(batch, create_graph=False)
        return self._flatten([g for gs in grads for g in gs])

    def _kept(self, batch, grads):
        """The gradient graph: `grads` (kept from the gradient call) or
        built on `batch`."""
        if grads is not None:
            return grads
        return [g for gs in self._own_gradients(batch, True) for g in gs]

    def vjp_on(self, batch, w: np.ndarray, grads=None) -> np.ndarray:
        """J^T w = grad_x sum_i <w_i, grad_{x_i} l_i> on `batch` (or on the
        kept gradient graph `grads`; kept for another product)."""
        jtw, _ = graph_products(self._flat_params, self._kept(batch, grads),
                                self._to_tensors(w), True, False)
        return self._flatten(jtw)

    def jvp_on(self, batch, u: np.ndarray, grads=None) -> np.ndarray:
        """J u on `batch` (or the kept graph `grads`), by differentiating
        <J^T v, u> with respect to v."""
        _, ju = graph_products(self._flat_params, self._kept(batch, grads),
                               self._to_tensors(u), False, True)
        return self._flatten(ju)

    # ------------------------------------------------------- Game interface
    def _draw(self, count, seed):
        if self.sample_batch is None:
            raise ValueError("TorchGame needs sample_batch to draw minibatches")
        self._minibatches = [self.sample_batch(slot_seed(seed, k))
                             for k in range(count)]

    def minibatch(self, sample: int):
        if not 0 <= sample < len(self._minibatches):
            raise IndexError("minibatch slot not drawn (draw_minibatches)")
        return self._minibatches[sample]

    def draw_minibatches(self, count, seed):
        self._graphs.clear()
        self._draw(count, seed)

    def gradient(self, x, sample):
        self._load(x)
        if not self.keep_graph:
            return self.gradient_on(self.minibatch(sample))
        grads = [g for gs in self._own_gradients(self.minibatch(sample), True)
                 for g in gs]
        self._graphs[sample] = grads
        return self._flatten(grads)

    def vjp(self, x, w, sample):
        self._load(x)
        return self.vjp_on(self.minibatch(sample), w,
                           self._graphs.get(sample))

    def jvp(self, x, u, sample):
        self._load(x)
        return self.jvp_on(self.minibatch(sample), u,
                           self._graphs.get(sample))

    def loss_gradient(self, x, player, sample):
        """grad_x l_player by autograd: the player's loss differentiated
        with respect to every player's parameters (LOLA's and SOS's cross
        gradients; zeros where the loss does not reach)."""
        self._load(x)
        loss = self.losses(self.minibatch(sample))[player]
        return self._flatten(self._grad_all(loss))


def __getattr__(name):  # gameopt.torch.GameOptimizer without an import cycle
    if name in ("GameOptimizer", "SessionDone"):
        import gameopt.optim
        return getattr(gameopt.optim, name)
    raise AttributeError(name)
