"""Sharding one experiment's parameters over S servers (models too large for
one server); mirrors client/worker/sharding.h and sharded_worker.h.

Shard s of S owns coordinates [floor(s n_p / S), floor((s + 1) n_p / S)) of
every player's flat block (n_p coordinates, the gameopt.proto layout). Each
shard is an ordinary session on its own server whose players have ONE tensor
"slice" of that length; the server needs no change. A ShardedWorker joins
the S sessions, assembles the full point and probes from the S tasks,
computes every gradient and product once on the full model (minibatches from
shard 0's task seed) and sends each shard its slice, to all shards at once.

    plan = ShardPlan(game.players(), len(addresses))
    client = ShardedClient(addresses)
    ids = client.create_session(build_session_config(game, ...), plan)
    ShardedWorker(addresses, ids, game).run()      # one per worker thread
    x = client.get_parameters(ids, plan).flat

Exact for every per-coordinate algorithm: SimGD, AltGD, ConOpt with each
estimator, SGA without alignment, extragradient, optimistic GD,
optimistic Adam, extrapolation from the past, LEAD, lookahead,
with any base optimizer and clip_value. Refused with ShardingError (a
ValueError) at session creation: SGA's alignment, clip_global_norm, CGD and
ACGD (they need a reduction over all coordinates), quorum < K and the DROP
policy (shards could close a round with different samples).
"""

import concurrent.futures
import dataclasses
import threading
from typing import List, Optional, Sequence

import numpy as np

from gameopt._stubs import pb
from gameopt.games import Game
from gameopt.session import Client
from gameopt.tensors import FlatLayout, PlayerSpec, TensorSpec, \
    decode_vector, encode_vector, vector_dtype
from gameopt.worker import TaskLink, WorkerProgress, WorkerStopped

SHARD_TENSOR = "slice"

# Worker processes' threads join the shards one at a time, so their worker
# ids agree on every shard (each shard then sums the samples in the same
# order: bitwise reproducible runs).
_JOIN_LOCK = threading.Lock()


class ShardingError(ValueError):
    """The experiment cannot be sharded exactly (see the module doc)."""


class ShardPlan:
    """Which coordinates of each player every shard owns."""

    def __init__(self, players: Sequence[PlayerSpec], num_shards: int):
        if num_shards < 1:
            raise ShardingError(f"the number of shards must be >= 1, got "
                                f"{num_shards}")
        self.players = list(players)
        self.num_shards = num_shards
        self.layout = FlatLayout(self.players)
        self._sizes = [p.size for p in self.players]
        for player, size in zip(self.players, self._sizes):
            if size < num_shards:
                raise ShardingError(
                    f"player '{player.name}' has {size} coordinates, fewer "
                    f"than the {num_shards} shards: every shard needs a "
                    f"slice of every player")
        self._starts = [self.layout.player_slice(p.name).start
                        for p in self.players]
        self.shard_layouts = [
            FlatLayout([PlayerSpec(p.name, [TensorSpec(
                SHARD_TENSOR, (self.begin(i, s + 1) - self.begin(i, s),))])
                for i, p in enumerate(self.players)])
            for s in range(num_shards)]
        # Flat indices of shard s's coordinates in the full vector.
        self._index = [np.concatenate([
            np.arange(start + self.begin(i, s), start + self.begin(i, s + 1))
            for i, start in enumerate(self._starts)])
            for s in range(num_shards)]

    def begin(self, player: int, shard: int) -> int:
        """First coordinate of player `player`'s block owned by `shard`."""
        return self._sizes[player] * shard // self.num_shards

    def gather(self, shard: int, full: np.ndarray) -> np.ndarray:
        """full -> shard's flat vector (its slices, players in order)."""
        return np.asarray(full, dtype=np.float64)[self._index[shard]]

    def scatter(self, shard: int, values: np.ndarray,
                full: np.ndarray) -> None:
        """shard's flat vector -> its coordinates of `full`."""
        full[self._index[shard]] = values


def check_shardable(config: "pb.SessionConfig") -> None:
    """Raises ShardingError when `config` cannot be sharded exactly."""
    a = config.algorithm
    why = (" needs a reduction over all coordinates, which no shard sees; "
           "run it on one server")
    if a.kind == pb.SGA and not a.sga_no_alignment:
        raise ShardingError(
            "sharding: SGA's alignment (the sign of <xi, J^T xi><A^T xi, "
            f"J^T xi>){why}, or turn the alignment off (a fixed lambda0 "
            "shards exactly)")
    if a.kind in (pb.CGD, pb.ACGD):
        raise ShardingError(
            f"sharding: {pb.Algorithm.Name(a.kind)}'s Krylov solve (dot "
            f"products of whole vectors every iteration){why}")
    if a.kind in (pb.LOLA, pb.SOS):
        raise ShardingError(
            f"sharding: {pb.Algorithm.Name(a.kind)}'s cross gradients (each "
            "loss differentiated with respect to every player's parameters) "
            f"and SOS's p (dot products of whole vectors){why}")
    if a.clip_global_norm > 0:
        raise ShardingError(
            f"sharding: clip_global_norm = {a.clip_global_norm} (the norm "
            f"of the whole update){why}, or clip per coordinate with "
            "clip_value")
    k = config.workers_per_round or 1
    if config.quorum not in (0, k):
        raise ShardingError(
            f"sharding: quorum = {config.quorum} < K = {k} would let the "
            "shards close a round with different workers' samples; use "
            "quorum 0 (all K workers)")
    if config.invalid_sample_policy == pb.DROP:
        raise ShardingError(
            "sharding: invalid_sample_policy DROP would drop a sample on the "
            "shard holding its bad coordinates only; use REJECT")


def shard_session_configs(config: "pb.SessionConfig",
                          plan: ShardPlan) -> List["pb.SessionConfig"]:
    """The S shard configs of the unsharded `config` (as
    build_session_config makes it); ShardingError if it cannot be sharded."""
    check_shardable(config)
    if len(config.players) != len(plan.players):
        raise ShardingError(f"sharding: the config has {len(config.players)}"
                            f" players, the game {len(plan.players)}")
    initial = pb.Vector()
    for player in config.players:
        tensors = initial.players.add(player=player.name)
        tensors.tensors.extend(t for t in player.tensors if t.data)
    x = decode_vector(initial, plan.layout)
    shards = []
    for s in range(plan.num_shards):
        shard = pb.SessionConfig()
        shard.CopyFrom(config)
        values = encode_vector(plan.gather(s, x), plan.shard_layouts[s], None,
                               pb.FLOAT64)
        for player, tensors in zip(shard.players, values.players):
            del player.tensors[:]
            player.tensors.extend(tensors.tensors)
        shards.append(shard)
    return shards


@dataclasses.dataclass
class ShardedParameters:
    step: int  # shard 0's
    flat: np.ndarray  # x in the game's layout


class ShardedClient:
    """Session management over S servers (one Client each)."""

    def __init__(self, addresses_or_channels: Sequence, **client_options):
        self.clients = [Client(a, **client_options)
                        for a in addresses_or_channels]

    @property
    def num_shards(self) -> int:
        return len(self.clients)

    def create_session(self, config: "pb.SessionConfig",
                       plan: ShardPlan) -> List[str]:
        """Creates the S shard sessions; returns their ids in shard order.
        ShardingError before anything is created if it cannot be sharded;
        on a server error the shards already created are deleted."""
        if plan.num_shards != self.num_shards:
            raise ShardingError(f"a plan of {plan.num_shards} shards for "
                                f"{self.num_shards} servers")
        ids = []
        try:
            for client, shard in zip(self.clients,
                                     shard_session_configs(config, plan)):
                ids.append(client.create_session(shard))
        except Exception:
            self.delete_session(ids)
            raise
        return ids

    def get_parameters(self, session_ids: Sequence[str],
                       plan: ShardPlan) -> ShardedParameters:
        flat = np.zeros(plan.layout.dimension)
        step = 0
        for s, (client, session_id) in enumerate(zip(self.clients,
                                                     session_ids)):
            params = client.get_parameters(session_id,
                                           plan.shard_layouts[s].players)
            plan.scatter(s, params.flat, flat)
            if s == 0:
                step = params.step
        return ShardedParameters(step, flat)

    def delete_session(self, session_ids: Sequence[str]) -> None:
        """Best effort on every shard given an id."""
        for client, session_id in zip(self.clients, session_ids):
            try:
                client.delete_session(session_id)
            except Exception:  # noqa: BLE001 - best effort
                pass

    def close(self):
        for client in self.clients:
            client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ShardedWorker:
    """One worker of a sharded experiment. Not thread-safe: one per thread
    (with its own Game). Keyword options are Worker's (name, max_retries,
    initial_backoff, max_backoff, call_timeout, on_progress,
    max_message_mb, and make_channel's root_certificates, token,
    certificate_chain, private_key)."""

    def __init__(self, addresses_or_channels: Sequence,
                 session_ids: Sequence[str], game: Game, name: str = "",
                 on_progress=None, **link_options):
        if len(addresses_or_channels) != len(session_ids):
            raise ShardingError(
                f"one session id per server: {len(session_ids)} ids for "
                f"{len(addresses_or_channels)} servers")
        self.game = game
        self.name = name
        self.on_progress = on_progress
        self.plan = ShardPlan(game.players(), len(session_ids))
        self._stop = threading.Event()
        self._links = [TaskLink(a, i, name=name, stop=self._stop,
                                **link_options)
                       for a, i in zip(addresses_or_channels, session_ids)]
        self._pool = (concurrent.futures.ThreadPoolExecutor(
            max_workers=len(self._links) - 1,
            thread_name_prefix="gameopt-shard")
            if len(self._links) > 1 else None)
        self.params = np.zeros(self.plan.layout.dimension)
        self.params_versions = [-1] * len(self._links)
        self.tasks_done = 0
        self._dtype = pb.FLOAT32
        self._gradient = None
        self._responses = [None] * len(self._links)

    @property
    def num_shards(self) -> int:
        return len(self._links)

    def worker_id(self, shard: int) -> int:
        return self._links[shard].worker_id

    def stop(self) -> None:
        """Makes run() return at the next task boundary. Thread-safe."""
        self._stop.set()

    def run(self) -> None:
        """Joins every shard and plays until all are DONE. Raises what
        Worker.run raises, and ShardingError when the shards' tasks
        disagree (sessions not created together with one config)."""
        try:
            with _JOIN_LOCK:
                self._responses = [link.join(version) for link, version in
                                   zip(self._links, self.params_versions)]
            self._accept()
            while self._responses[0].task.kind != pb.DONE:
                if self._stop.is_set():
                    raise WorkerStopped("worker stopped")
                self._responses = self._submit_all(self._requests())
                self._accept()
                self.tasks_done += 1
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _submit_all(self, requests):
        """Sends every shard its request at once; shard order results."""
        def submit(s):
            link, request = self._links[s], requests[s]
            if isinstance(request, pb.SubmitGradientRequest):
                return link.submit_gradient(request)
            return link.submit_products(request)
        futures = [self._pool.submit(submit, s)
                   for s in range(1, self.num_shards)]
        first = submit(0)
        return [first] + [f.result() for f in futures]

    def _accept(self) -> None:
        first = self._responses[0].task
        for s, response in enumerate(self._responses):
            task = response.task
            agree = task.kind == first.kind and (
                task.kind == pb.DONE or (
                    task.step == first.step and task.phase == first.phase
                    and task.num_samples == first.num_samples
                    and len(task.probes) == len(first.probes)
                    and task.vjp == first.vjp and task.jvp == first.jvp))
            if not agree:
                raise ShardingError(
                    f"the shards are out of step: shard 0 sent "
                    f"{_describe(first)}, shard {s} {_describe(task)}; "
                    f"create the shard sessions together, with one config")
            if task.params_included:
                self.plan.scatter(s, decode_vector(
                    task.params, self.plan.shard_layouts[s]), self.params)
                self.params_versions[s] = task.params_version
                self._dtype = vector_dtype(task.params, self._dtype)
        if self.on_progress is not None:
            self.on_progress(WorkerProgress(
                self._links[0].worker_id, first.step, first.phase, first.kind,
                self.params, self._gradient))

    def _requests(self):
        tasks = [r.task for r in self._responses]
        first = tasks[0]
        headers = [dict(round=t.round, step=t.step, phase=t.phase,
                        known_params_version=v)
                   for t, v in zip(tasks, self.params_versions)]
        layouts = self.plan.shard_layouts
        if first.kind == pb.GRADIENT:
            self.game.draw_minibatches(first.num_samples, first.seed)
            requests = [pb.SubmitGradientRequest(**h) for h in headers]
            for k in range(first.num_samples):
                g = np.asarray(self.game.gradient(self.params, k),
                               dtype=np.float64)
                for s, request in enumerate(requests):
                    request.gradients.append(encode_vector(
                        self.plan.gather(s, g), layouts[s], first.players,
                        self._dtype))
                if k == 0:
                    self._gradient = g
            return requests
        requests = [pb.SubmitJacobianProductsRequest(**h) for h in headers]
        for k in range(len(first.probes)):
            probe = np.zeros(self.plan.layout.dimension)
            for s, task in enumerate(tasks):
                self.plan.scatter(s, decode_vector(task.probes[k], layouts[s]),
                                  probe)
            for kind, wanted, method in (("vjp", first.vjp, self.game.vjp),
                                         ("jvp", first.jvp, self.game.jvp)):
                if not wanted:
                    continue
                product = np.asarray(method(self.params, probe, k),
                                     dtype=np.float64)
                for s, request in enumerate(requests):
                    getattr(request, kind).append(encode_vector(
                        self.plan.gather(s, product), layouts[s], None,
                        self._dtype))
        return requests


def _describe(task) -> str:
    return (f"{pb.TaskKind.Name(task.kind)} at step {task.step} phase "
            f"{task.phase} ({task.phase_label})")
