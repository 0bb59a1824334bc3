"""GameOptimizer: a gameopt session driven from the user's own torch loop.

    opt = GameOptimizer(server, {"generator": G, "discriminator": D},
                        algorithm="conopt", optimizer="rmsprop", lr=1e-4,
                        gamma=10.0)
    with opt:
        for real in loader:                      # the user's DataLoader
            def closure():
                z = torch.randn(len(real), 16)
                return {"generator": g_loss(G, D, z),
                        "discriminator": d_loss(G, D, z, real),
                        "d_real": D(real).mean()}    # an extra scalar
            losses = opt.step(closure)

step() answers every task of one step of the session (the server runs the
algorithm and the optimizer) and returns with the step's new parameters
copied into the modules in place. The closure computes the players' losses
at the modules' current parameters on a fresh minibatch; step() calls it
once per gradient sample, again where the algorithm needs another point
(extragradient's x', each AltGD stage, samples_per_worker > 1). It returns
a mapping: keys naming players are their losses, any other key is a scalar
reported to the server (`SessionStatus.scalars`, metrics, curves), as are
the losses under "loss/<player>". step() returns these values (floats) of
the step's first closure call (the mean over its samples).

Compute: with ConOpt, SGA and LEAD the gradient keeps its graph
(create_graph=True) and the products phase differentiates it again (J^T w
by one more backward pass, J w by the double-backward trick; LEAD's two JVP
rounds both use it), so no forward pass is computed twice; with the LOCAL
estimator and fuse_local_products the products travel with the gradients
in one round; a graph is freed by its last product (the fused J^T xi, or
ConOpt/SGA's products phase), as in-process autograd frees it
(gameopt.optim_autograd).

Wire: submissions are written by gameopt.torch_wire around per-session
templates (no protobuf objects per step): a tensor already in the wire
dtype is joined into the request straight from its memory (one copy),
others are written into the template first; new parameters are copied straight from the
TaskResponse bytes into the parameters' storage (CPU parameters in the
session's dtype; otherwise, and for JoinSession's answer, through the
parsed message).

Players: a mapping name -> nn.Module (or a list of parameters), or
torch-style parameter groups `[{"params": ..., "name": "generator",
"lr": 1e-4, "schedule": StepLR(...)}, ...]`: each group is a player.

Buffers (BatchNorm running statistics, ...) are not players: they stay
local to each worker and change only through the closure's forward passes
(in train mode, every closure call updates them, extragradient's x' and
AltGD stages included). The server never sees them; with several workers
each rank's statistics follow its own shard, so evaluate with one rank's
modules, or re-estimate the statistics before evaluation.

Launching: rank and world size come from RANK / WORLD_SIZE (torchrun) or
the arguments (default 0 / 1). Rank 0 creates the session under the id
`session` (every rank passes the same one) and the others join it once it
exists; each worker is named "rank-<r>" and joins with resume_by_name, so a
restarted rank takes its old place. Workers leave the session
(LeaveSession) on close(): at the end of a `with` block, at interpreter
exit, and on SIGTERM (turned into SystemExit) or SIGINT.
"""

import dataclasses
import os
import time
import warnings
from typing import Dict, List, Mapping, Optional, Tuple

import grpc
import numpy as np
import torch

from gameopt import wire_codec
from gameopt._stubs import pb
from gameopt.errors import Error, FullShardUnsupported, suggest
from gameopt.session import Client, SessionOptions, build_session_config, \
    canonical_options, ignored_options
from gameopt.tensors import LayoutError, PlayerSpec, TensorSpec
from gameopt.torch_codec import TensorTable
from gameopt.torch_wire import RawGradientRequest, RawProductsRequest, \
    VectorTemplate, params_offset
from gameopt.optim_autograd import graph_products, own_gradients
from gameopt.optim_closure import scalar_value, split_closure_result
from gameopt.optim_exit import register_exit
from gameopt.optim_players import players_from
from gameopt.worker import TaskLink

_OWN_OPTIONS = {"session", "create", "rank", "world_size", "worker_name",
                "join_timeout", "handle_signals"}


class SessionDone(Exception):
    """step() was called after the session finished (max_steps)."""


_NUMPY_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A CPU numpy view (a copy only off the CPU) of a tensor's values, in
    float32 or float64."""
    try:
        # The common case first (a CPU float tensor): 2.8 us a tensor
        # against 3.7 through the checks below (40 tensors a ConOpt step on
        # the MoG GAN).
        array = tensor.detach().numpy()
        if array.dtype in _NUMPY_FLOATS:
            return array
    except (TypeError, RuntimeError):  # on a device, or numpy lacks the dtype
        pass
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.double()  # numpy has no bfloat16
    return tensor.numpy()


class GameOptimizer:
    """A worker of a gameopt session, driven by the caller's step() calls.

    server: an address "host:port", a gameopt.Client, or a LocalServer.
    players: name -> nn.Module (or list of parameters), or parameter groups.
    algorithm, optimizer, lr, and any gameopt.SessionOptions field as a
      keyword (gamma, estimator, samples_per_worker, max_steps, float64,
      fuse_local_products, schedule, ...; unknown names are refused with
      the closest one, options the algorithm ignores are refused).
      float64 defaults to the parameters' dtype (float32 models: float32).
      They configure the session where this process creates it; a joining
      rank follows the session's configuration (its algorithm included).
    session: the session id to create (rank 0) or join (other ranks);
      default $GAMEOPT_SESSION, else under torchrun "torchrun-<run id>"
      ($TORCHELASTIC_RUN_ID, the same for every rank of one run); a single
      process without one creates a session with a fresh id.
    create: create the session (default: rank 0); ALREADY_EXISTS joins it.
    rank, world_size: default $RANK / $WORLD_SIZE, else 0 / 1; workers
      (per round) defaults to world_size.
    worker_name: default "rank-<rank>"; rejoins by this name.
    """

    def __init__(self, server, players, algorithm: str = "simgd",
                 optimizer: str = "sgd", lr: Optional[float] = None, *,
                 session: Optional[str] = None, create: Optional[bool] = None,
                 rank: Optional[int] = None, world_size: Optional[int] = None,
                 worker_name: Optional[str] = None,
                 join_timeout: float = 120.0, handle_signals: bool = True,
                 **options):
        self.rank = int(os.environ.get("RANK", 0)) if rank is None else rank
        self.world_size = (int(os.environ.get("WORLD_SIZE", 1))
                           if world_size is None else world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, "
                             f"{self.world_size})")
        per_player: Dict[str, Dict[str, object]] = {}
        self._players = players_from(players, per_player)
        self.player_names = [p.name for p in self._players]
        self._table = TensorTable([(p.name, p.tensor_names, p.params)
                                   for p in self._players])
        self._params = self._table.flat
        self._offsets, start = {}, 0
        for p in self._players:
            self._offsets[p.name] = start
            start += len(p.params)

        options = canonical_options(options)
        if lr is not None:
            options["learning_rate"] = lr
        options.setdefault("workers", self.world_size)
        if "float64" not in options:
            options["float64"] = self._params[0].dtype == torch.float64
        for name, group in per_player.items():
            for key, value in group.items():
                key = "learning_rate" if key == "lr" else key
                field = {"learning_rate": "player_learning_rate",
                         "schedule": "player_schedule",
                         "clip_value": "clip_value"}[key]
                options.setdefault(field, {})[name] = value
        schedule = options.get("schedule")
        if isinstance(schedule, Mapping):  # per player
            options["player_schedule"] = dict(schedule)
            options["schedule"] = None
        self.options = dataclasses.replace(
            SessionOptions(), algorithm=algorithm, optimizer=optimizer,
            **options)
        problems = ignored_options(self.options)
        if problems:
            raise ValueError("; ".join(problems))

        self.session_id = session or os.environ.get("GAMEOPT_SESSION", "")
        if not self.session_id and self.world_size > 1 and \
                os.environ.get("TORCHELASTIC_RUN_ID", "none") != "none":
            # torchrun gives every rank of one run the same id.
            self.session_id = "torchrun-" + "".join(
                c if c.isalnum() or c in "_.-" else "-"
                for c in os.environ["TORCHELASTIC_RUN_ID"])[:100]
        if not self.session_id and self.world_size > 1:
            raise ValueError("several ranks need a shared session id: pass "
                             "session='my-run' (or set GAMEOPT_SESSION)")
        self._client = (server if isinstance(server, Client) else
                        Client(getattr(server, "address", server)))
        self._own_client = not isinstance(server, Client)
        self._join_timeout = join_timeout
        create = self.rank == 0 if create is None else create
        if create or not self.session_id:
            self.session_id = self._create()
        else:
            self._wait_for_session(join_timeout)
        config = self._client.get_session(self.session_id).config
        self._check_layout(config)
        self.algorithm = pb.Algorithm.Name(config.algorithm.kind).lower()
        # A fused LOCAL round is the whole step; a fused round of the bias
        # meter (AlgorithmConfig.bias_meter) is followed by the products.
        self._fused_local = config.algorithm.fuse_local_products
        self._dtype = config.dtype or pb.FLOAT32
        # The session's compressed wire, followed for what this rank sends.
        self._send_dtype = config.wire.from_workers \
            if config.wire.from_workers in wire_codec.COMPRESSED \
            else self._dtype
        self._rng = np.random.default_rng() \
            if config.wire.stochastic_rounding else None
        self.worker_name = worker_name or f"rank-{self.rank}"
        self._link = TaskLink(self._client.channel, self.session_id,
                              name=self.worker_name, resume_by_name=True)
        self._task = None
        self._version = 0
        # Prepared wire bytes (gameopt.torch_wire), per set of players.
        self._layout = [(p.name, [(n, tuple(t.shape)) for n, t in
                                  zip(p.tensor_names, p.params)])
                        for p in self._players]
        self._templates: Dict[Tuple[Tuple[str, ...], object],
                              VectorTemplate] = {}
        self._param_views: Optional[List[np.ndarray]] = None
        self._param_ptrs: List[int] = []
        self._graphs: Dict[int, List[Optional[torch.Tensor]]] = {}
        self.done = False
        self.steps_done = 0
        self.rounds = 0  # submissions (gradient and products rounds)
        self._closed = False
        self._recompute_warned = False
        register_exit(self, handle_signals)

    # ------------------------------------------------------------ session
    def _create(self) -> str:
        specs, initial = [], []
        for p in self._players:
            specs.append(PlayerSpec(p.name, [
                TensorSpec(n, tuple(t.shape))
                for n, t in zip(p.tensor_names, p.params)]))
            initial.extend(t.detach().to("cpu", torch.float64).reshape(-1)
                           for t in p.params)
        config = build_session_config(
            specs, torch.cat(initial).numpy(), options=self.options)
        give_up = time.monotonic() + self._join_timeout
        while True:
            try:
                return self._client.create_session(config, self.session_id)
            except Error as error:
                if error.code() == grpc.StatusCode.ALREADY_EXISTS:
                    return self.session_id  # a restarted rank 0: join it
                if error.code() != grpc.StatusCode.UNAVAILABLE or \
                        time.monotonic() > give_up:
                    raise
            time.sleep(0.1)  # the server is starting

    def _wait_for_session(self, timeout: float) -> None:
        give_up = time.monotonic() + timeout
        while True:
            try:
                self._client.get_session(self.session_id)
                return
            except Error as error:
                if error.code() not in (grpc.StatusCode.NOT_FOUND,
                                        grpc.StatusCode.UNAVAILABLE):
                    raise
                if time.monotonic() > give_up:
                    raise Error(error.code(), f"session "
                                f"'{self.session_id}' did not appear within "
                                f"{timeout:g} s (rank 0 creates it): "
                                f"{error.message}") from None
            time.sleep(0.1)

    def _check_layout(self, config) -> None:
        """LayoutError naming players and shapes if the session's players
        are not our modules'."""
        ours = {p.name: p for p in self._players}
        theirs = [p.name for p in config.players]
        problems = []
        if theirs != self.player_names:
            for name in self.player_names:
                if name not in theirs:
                    problems.append(f"player '{name}' is not in the session"
                                    f"{suggest(name, theirs)}")
            if not problems:
                problems.append(f"players {self.player_names} are in the "
                                f"session in the order {theirs}")
        for player in config.players:
            mine = ours.get(player.name)
            if mine is None:
                continue
            shapes = {n: tuple(t.shape) for n, t in
                      zip(mine.tensor_names, mine.params)}
            names = [t.name for t in player.tensors]
            if names != mine.tensor_names:
                problems.append(f"player '{player.name}': the session's "
                                f"tensors are {names}, the model's "
                                f"{mine.tensor_names}")
                continue
            for tensor in player.tensors:
                if tuple(tensor.shape) != shapes[tensor.name]:
                    problems.append(
                        f"'{player.name}/{tensor.name}': session shape "
                        f"{tuple(tensor.shape)}, model shape "
                        f"{shapes[tensor.name]}")
        if problems:
            raise LayoutError(f"session '{self.session_id}' does not fit the "
                              f"model: " + "; ".join(problems))

    @property
    def client(self) -> Client:
        return self._client

    @property
    def shard(self) -> Tuple[int, int]:
        """(rank, world_size): e.g. DistributedSampler(dataset,
        num_replicas=world_size, rank=rank) needs no process group."""
        return self.rank, self.world_size

    def sampler(self, dataset, **kwargs):
        """torch.utils.data.DistributedSampler over this rank's shard."""
        from torch.utils.data import DistributedSampler
        return DistributedSampler(dataset, num_replicas=self.world_size,
                                  rank=self.rank, **kwargs)

    @property
    def worker_id(self) -> int:
        return self._link.worker_id

    # --------------------------------------------------------------- step
    def step(self, closure) -> Dict[str, float]:
        """One step of the session (see the module docstring). Returns the
        first closure call's losses and scalars; SessionDone after the
        last step."""
        if self._closed:
            raise RuntimeError("step() after close()")
        if self._task is None:
            self._accept(self._link.join(self._version))
        if self._task.kind == pb.DONE:
            self.done = True
            raise SessionDone(f"session '{self.session_id}' is done")
        start = self._task.step
        reported = None
        try:
            while self._task.kind != pb.DONE and self._task.step == start:
                task = self._task
                if task.full_shard:
                    raise FullShardUnsupported(task)
                if task.kind == pb.GRADIENT:
                    response, values = self._gradient(task, closure)
                    reported = reported if reported is not None else values
                elif task.kind == pb.CROSS_GRADIENT:
                    raise NotImplementedError(
                        "GameOptimizer does not answer CROSS_GRADIENT tasks "
                        "(the cross gradients of LOLA and SOS); run those "
                        "sessions with gameopt.Worker over a TorchGame, "
                        "whose loss_gradient answers them")
                else:
                    response = self._products(task, closure)
                self.rounds += 1
                self._accept(response)
        finally:
            self._graphs.clear()
        self.steps_done += 1
        if self._task.kind == pb.DONE:
            self.done = True
            self._table.load(self._client.get_parameters(
                self.session_id).vector)
        return reported or {}

    def _template(self, players: Tuple[str, ...] = (),
                  slot=None) -> VectorTemplate:
        """The wire template of `players`' tensors (all when empty): in the
        session's dtype (parameters; slot None), or, for a vector this rank
        sends, in its send dtype, one template per slot (e.g. ("g", k):
        the gradient of sample k), so that the vectors of one request
        each keep their bytes until it is sent."""
        key = (players, slot)
        template = self._templates.get(key)
        if template is None:
            wanted = set(players or self.player_names)
            send = slot is not None
            template = self._templates[key] = VectorTemplate(
                [entry for entry in self._layout if entry[0] in wanted],
                self._send_dtype if send else self._dtype,
                self._rng if send else None)
        return template

    def _encode(self, values, slot, players: Tuple[str, ...] = ()):
        """Vector bytes of one tensor (or None = zeros) per parameter in
        flat order, for `players` (all when empty), from the template of
        `slot` (VectorTemplate.encode: views of the tensors themselves or
        of the template, valid until that slot's next encode)."""
        template = self._template(players, slot)
        if players:
            wanted = set(players)
            values = [v for p in self._players if p.name in wanted
                      for v in values[self._offsets[p.name]:
                                      self._offsets[p.name] + len(p.params)]]
        return template.encode([None if v is None else _numpy(v)
                                for v in values])

    def _views(self) -> Optional[List[np.ndarray]]:
        """Flat numpy views of the parameters' storage (the wire dtype,
        CPU, contiguous), or None where the parameters are not so."""
        ptrs = [p.data_ptr() for p in self._params]
        if ptrs != self._param_ptrs:
            self._param_ptrs = ptrs
            wire = torch.float64 if self._dtype == pb.FLOAT64 \
                else torch.float32
            if all(p.device.type == "cpu" and p.dtype == wire and
                   p.is_contiguous() for p in self._params):
                self._param_views = [p.detach().numpy().reshape(-1)
                                     for p in self._params]
            else:
                self._param_views = None
        return self._param_views

    def _accept(self, response) -> None:
        task = self._task = response.task
        if task.params_included:
            if not self._load_raw(getattr(response, "raw", None)):
                self._table.load(task.params)
            self._version = task.params_version

    def _load_raw(self, raw: Optional[bytes]) -> bool:
        """Copies the parameters straight from the TaskResponse bytes when
        they have our template's layout; False where they do not."""
        if raw is None:
            return False
        views = self._views()
        if views is None:
            return False
        template = self._template()
        at = params_offset(raw, template)
        if at is None:
            return False
        dtype = template.dtype
        for view, (offset, count) in zip(views, template.spans):
            view[...] = np.frombuffer(raw, dtype=dtype, count=count,
                                      offset=at + offset)
        with torch.no_grad():
            # numpy's writes are invisible to autograd: an exact in-place
            # no-op bumps the version counters, so a graph saved before
            # still refuses to differentiate at the new values.
            torch._foreach_mul_(self._params, 1.0)
        return True

    def _losses(self, closure):  # -> (player losses, user scalars)
        return split_closure_result(closure(), self.player_names)

    def _gradient(self, task, closure):
        fused = task.fused_vjp or task.fused_jvp
        # Products on this minibatch follow: ConOpt/SGA/SHGD phase 1 (unless
        # the fused LOCAL round was the whole step), LEAD's phases 1 and 2,
        # CGD's Krylov rounds, or the spectrum rounds (EstimateSpectrum)
        # after their gradient round.
        keep = (
            (self.algorithm in ("conopt", "sga", "shgd", "lead", "cgd",
                                "acgd")
             and task.phase == 0 and not self._fused_local)
            or task.phase_label.startswith("spectrum"))
        players = set(task.players) if task.players else \
            set(self.player_names)
        graph_players = set(self.player_names) if (keep or fused) else players
        subset = () if players == set(self.player_names) else tuple(
            n for n in self.player_names if n in players)
        gradients, vjps, jvps = [], [], []
        sums: Dict[str, float] = {}
        for k in range(max(task.num_samples, 1)):
            losses, scalars = self._losses(closure)
            grads = own_gradients(self._players, losses, graph_players,
                                  keep or fused)
            gradients.append(self._encode(grads, ("g", k), subset))
            if fused:
                xi = [None if g is None else g.detach() for g in grads]
                # Free the graph on the way unless products follow.
                vjp, jvp = graph_products(self._params, grads, xi,
                                          task.fused_vjp, task.fused_jvp,
                                          retain=keep)
                if task.fused_vjp:
                    vjps.append(self._encode(vjp, ("vjp", k)))
                if task.fused_jvp:
                    jvps.append(self._encode(jvp, ("jvp", k)))
            if keep:
                self._graphs[k] = grads
            values = {f"loss/{n}": scalar_value(l) for n, l in losses.items()}
            values.update(scalars)
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value
        count = max(task.num_samples, 1)
        means = {name: total / count for name, total in sums.items()}
        request = RawGradientRequest(
            task.round, task.step, task.phase, self._version, gradients,
            vjps, jvps, list(means.items()))
        reported = {(n[5:] if n.startswith("loss/") and n[5:] in
                     self.player_names else n): v for n, v in means.items()}
        return self._link.submit_gradient(request), reported

    def _products(self, task, closure):
        vjps, jvps = [], []
        # ConOpt/SGA's products phase is the last use of the graphs; the
        # spectrum's power iterations, LEAD's second player and CGD's Krylov
        # rounds come back to them (freed when the step ends).
        retain = (task.phase_label.startswith("spectrum")
                  or (self.algorithm == "lead" and task.phase == 1)
                  or self.algorithm in ("cgd", "acgd"))
        for k, probe in enumerate(task.probes):
            grads = self._graphs.get(k)
            if grads is None:  # e.g. after a rejoin: a fresh minibatch
                if not self._recompute_warned:
                    warnings.warn("products without the gradient's graph: "
                                  "calling the closure again (a different "
                                  "minibatch)")
                    self._recompute_warned = True
                losses, _ = self._losses(closure)
                grads = own_gradients(self._players, losses,
                                      set(self.player_names), True)
            w = self._table.decode(probe)
            vjp, jvp = graph_products(self._params, grads, w, task.vjp,
                                      task.jvp, retain)
            if task.vjp:
                vjps.append(self._encode(vjp, ("vjp", k)))
            if task.jvp:
                jvps.append(self._encode(jvp, ("jvp", k)))
        return self._link.submit_products(RawProductsRequest(
            task.round, task.step, task.phase, self._version, vjps, jvps))

    # ------------------------------------------------------ status, exit
    def status(self) -> "pb.SessionStatus":
        return self._client.get_session(self.session_id)

    def learning_rates(self) -> Dict[str, float]:
        """Per player, the server's learning rate of the next step (after
        its schedule)."""
        metrics = self._client.get_metrics(self.session_id)
        return dict(zip(self.player_names, metrics.learning_rate))

    def close(self) -> None:
        """Leaves the session (LeaveSession) and closes the channel we
        opened; idempotent. Called by `with`, at exit and on signals."""
        if self._closed:
            return
        self._closed = True
        self._graphs.clear()
        self._link.leave()
        if self._own_client:
            self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
