"""Worker: joins a session and answers its tasks with a Game until DONE.

The loop and its failure handling mirror client/worker/worker.h:

    worker = Worker("127.0.0.1:50051", session_id, game)
    worker.run()        # returns when the session is DONE

- GRADIENT: game.draw_minibatches(num_samples, seed), then
  game.gradient(x, k) for each sample k, sent for the task's players.
- PRODUCTS: game.vjp(x, w_k, k) and/or game.jvp(x, w_k, k) per probe w_k
  (probe k belongs to sample k of the step's gradient phase).
- UNAVAILABLE, CANCELLED (the server stopped with the call in flight; the
  worker never cancels its own calls), ABORTED and DEADLINE_EXCEEDED are
  retried with exponential backoff, resubmitting the same round (the server
  applies it once; a restarted server with --state_dir resumes the round).
  FAILED_PRECONDITION (the round closed without us) rejoins with our worker
  id for the current task. Anything else raises gameopt.Error (a
  grpc.RpcError printed as `CODE: message`).
- Fused products (Task.fused_vjp/fused_jvp, the LOCAL estimator with
  fuse_local_products): game.vjp(x, xi_k, k) / game.jvp(x, xi_k, k) on each
  sample's own gradient, sent with the gradients in one round.
- A game with a `keep_graph` attribute (gameopt.torch.TorchGame) is told to
  keep each sample's gradient graph when the previous step asked for
  products after its gradient phase, so they are not recomputed.
- The worker tells the server which parameter version it holds
  (known_params_version); tasks carry parameters only when they changed.
"""

import dataclasses
import threading
import time
from typing import Callable, Optional

import grpc
import numpy as np
from google.protobuf import message as message_lib

from gameopt._stubs import pb, pb_grpc
from gameopt.errors import Error, FullShardUnsupported
from gameopt.games import Game
from gameopt.keepalive import Keepalive
from gameopt.session import channel_for
from gameopt.tensors import FlatLayout, decode_vector, encode_vector, \
    vector_dtype

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
             grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED)


class WorkerStopped(Exception):
    """run() ended because stop() was called (CANCELLED in the C++ worker)."""


@dataclasses.dataclass
class WorkerProgress:
    """What the worker just received (passed to on_progress)."""
    worker_id: int
    step: int
    phase: int
    kind: int                 # pb.GRADIENT, pb.PRODUCTS or pb.DONE
    params: np.ndarray        # the task's point (do not modify)
    gradient: Optional[np.ndarray]  # own sample-0 gradient of the last
                                    # gradient task, or None


class RawTaskResponse:
    """A TaskResponse parsed by protobuf, with the bytes it came from (for
    gameopt.torch_wire's direct reads of the parameters)."""

    __slots__ = ("raw", "message")

    def __init__(self, raw: bytes):
        self.raw = raw
        self.message = pb.TaskResponse.FromString(raw)

    @property
    def worker_id(self) -> int:
        return self.message.worker_id

    @property
    def task(self):
        return self.message.task


class _Stub:
    """The GameOptimizer stub, whose submits also take a request with
    prepared bytes (one that is not a protobuf message, e.g.
    gameopt.torch_wire's): sent through the same gRPC method with its
    SerializeToString as serializer, answered by a RawTaskResponse (the
    parsed message and its bytes)."""

    def __init__(self, channel):
        self._stub = pb_grpc.GameOptimizerStub(channel)
        self._raw = {
            method: channel.unary_unary(
                f"/gameopt.v1.GameOptimizer/{method}",
                request_serializer=lambda r: r.SerializeToString(),
                response_deserializer=RawTaskResponse)
            for method in ("SubmitGradient", "SubmitJacobianProducts")}

    def __getattr__(self, name):
        return getattr(self._stub, name)

    def _submit(self, method, request, **kwargs):
        if isinstance(request, message_lib.Message):
            return getattr(self._stub, method)(request, **kwargs)
        return self._raw[method](request, **kwargs)

    def SubmitGradient(self, request, **kwargs):  # noqa: N802 (gRPC's)
        return self._submit("SubmitGradient", request, **kwargs)

    def SubmitJacobianProducts(self, request, **kwargs):  # noqa: N802
        return self._submit("SubmitJacobianProducts", request, **kwargs)


class TaskLink:
    """One worker's calls to one session (JoinSession and the submits) with
    the failure handling above; shared by Worker and
    gameopt.sharding.ShardedWorker (one link per shard). Not thread-safe:
    one call at a time. With an address, `channel_options` are
    make_channel's (root_certificates, token, certificate_chain,
    private_key)."""

    def __init__(self, address_or_channel, session_id: str, name: str = "",
                 worker_id: int = 0, max_retries: int = 20,
                 initial_backoff: float = 0.02, max_backoff: float = 2.0,
                 call_timeout: float = 1800.0, max_message_mb: int = 1024,
                 stop: Optional[threading.Event] = None,
                 resume_by_name: bool = False, **channel_options):
        channel, _ = channel_for(address_or_channel, max_message_mb,
                                 **channel_options)
        self._stub = _Stub(channel)
        self.session_id = session_id
        self.name = name
        self.worker_id = worker_id
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.call_timeout = call_timeout
        self.stop = stop or threading.Event()
        self.resume_by_name = resume_by_name
        self.retries = 0  # retried calls, for diagnostics
        self.rejoins = 0  # rejoins after FAILED_PRECONDITION
        # Heartbeats while this worker holds a task (the session's lease).
        self.keepalive = Keepalive(self._stub, session_id)

    def _join_request(self, known_params_version: int):
        return pb.JoinSessionRequest(
            session_id=self.session_id, worker_id=self.worker_id,
            worker_name=self.name, known_params_version=known_params_version,
            resume_by_name=self.resume_by_name and self.worker_id == 0)

    def join(self, known_params_version: int):
        """Joins (or rejoins as worker_id); returns the TaskResponse."""
        return self._call("JoinSession",
                          self._join_request(known_params_version))

    def submit_gradient(self, request):
        """`request` without session and worker ids; they are filled in."""
        request.session_id, request.worker_id = self.session_id, self.worker_id
        return self._call("SubmitGradient", request)

    def submit_products(self, request):
        request.session_id, request.worker_id = self.session_id, self.worker_id
        return self._call("SubmitJacobianProducts", request)

    def leave(self, timeout: float = 5.0) -> bool:
        """LeaveSession for this worker (once joined); False if the call
        failed (the server gone, the session deleted): leaving is best
        effort."""
        self.keepalive.stop()
        if self.worker_id == 0:
            return False
        try:
            self._stub.LeaveSession(pb.LeaveSessionRequest(
                session_id=self.session_id, worker_id=self.worker_id),
                timeout=timeout)
            return True
        except grpc.RpcError:
            return False

    def _holding(self, response):
        """Records the worker id of a TaskResponse and keeps the worker
        alive (Heartbeat) while it holds the task."""
        self.worker_id = response.worker_id
        if response.task.kind != pb.DONE:
            self.keepalive.arm(self.worker_id)
        return response

    def _call(self, method: str, request):
        """One call with retries; rejoins on FAILED_PRECONDITION."""
        backoff = self.initial_backoff
        attempt = 0
        self.keepalive.disarm()  # the call renews the lease itself
        while True:
            try:
                response = getattr(self._stub, method)(
                    request, timeout=self.call_timeout)
                return self._holding(response)
            except grpc.RpcError as error:
                failure = error
            if (failure.code() == grpc.StatusCode.FAILED_PRECONDITION
                    and self.worker_id != 0):
                # The round closed without us: ask for the current task.
                self.rejoins += 1
                try:
                    response = self._stub.JoinSession(
                        self._join_request(request.known_params_version),
                        timeout=self.call_timeout)
                    return self._holding(response)
                except grpc.RpcError as error:
                    failure = error
            if (failure.code() not in RETRYABLE or attempt >= self.max_retries
                    or self.stop.is_set()):
                raise Error.from_rpc(failure) from None
            self.retries += 1
            time.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
            attempt += 1


class Worker:
    """Not thread-safe: one Worker (and one Game) per thread or process.
    With an address, `channel_options` are make_channel's
    (root_certificates, token, certificate_chain, private_key):

        Worker(address, session_id, game, root_certificates="ca.pem",
               token=os.environ["GAMEOPT_TOKEN"]).run()
    """

    def __init__(self, address_or_channel, session_id: str, game: Game,
                 name: str = "", worker_id: int = 0, max_retries: int = 20,
                 initial_backoff: float = 0.02, max_backoff: float = 2.0,
                 call_timeout: float = 1800.0,
                 on_progress: Optional[Callable[[WorkerProgress], None]] = None,
                 max_message_mb: int = 1024, wire_dtype: int = 0,
                 stochastic_rounding: bool = False, **channel_options):
        self._stop = threading.Event()
        self._link = TaskLink(
            address_or_channel, session_id, name=name, worker_id=worker_id,
            max_retries=max_retries, initial_backoff=initial_backoff,
            max_backoff=max_backoff, call_timeout=call_timeout,
            max_message_mb=max_message_mb, stop=self._stop,
            **channel_options)
        self.session_id = session_id
        self.game = game
        self.name = name
        self.on_progress = on_progress
        self._layout = FlatLayout(game.players())
        self.tasks_done = 0
        self.params_version = -1
        self.params = np.zeros(self._layout.dimension)
        self._dtype = pb.FLOAT32  # the session's, learned from the params
        # Compressed wire: the session's wire.from_workers, and its
        # stochastic_rounding (bits from this worker's own generator).
        self._wire_dtype = wire_dtype
        self._rng = np.random.default_rng() if stochastic_rounding else None
        self._gradient = None
        self._task = None
        self._products_follow = False  # the last step had a products phase

    @property
    def worker_id(self) -> int:
        return self._link.worker_id

    @property
    def retries(self) -> int:
        """Retried calls, for diagnostics."""
        return self._link.retries

    @property
    def rejoins(self) -> int:
        """Rejoins after FAILED_PRECONDITION."""
        return self._link.rejoins

    def stop(self) -> None:
        """Makes run() return at the next task boundary. Thread-safe."""
        self._stop.set()

    def run(self) -> None:
        """Joins and plays until the session is DONE. Raises grpc.RpcError on
        a non-retryable error (or retries exhausted), WorkerStopped after
        stop(), gameopt.tensors.LayoutError if the server's tensors do not
        fit the game."""
        try:
            self._accept(self._link.join(self.params_version))
            while self._task.kind != pb.DONE:
                if self._stop.is_set():
                    raise WorkerStopped("worker stopped")
                task, self._task = self._task, None
                self._accept(self._compute(task))
                self.tasks_done += 1
        finally:  # no heartbeats for a task nobody computes
            self._link.keepalive.disarm()

    def _accept(self, response) -> None:
        task = self._task = response.task
        if task.params_included:
            decode_vector(task.params, self._layout, self.params)
            self.params_version = task.params_version
            dtype = vector_dtype(task.params, self._dtype)
            if dtype in (pb.FLOAT32, pb.FLOAT64):  # not a compressed one
                self._dtype = dtype
        if self.on_progress is not None:
            self.on_progress(WorkerProgress(
                self.worker_id, task.step, task.phase, task.kind, self.params,
                self._gradient))

    def _encode(self, values, players=None):
        dtype = self._wire_dtype or self._dtype
        return encode_vector(np.asarray(values, dtype=np.float64),
                             self._layout, players, dtype, self._rng)

    def _compute(self, task):
        header = dict(round=task.round, step=task.step, phase=task.phase,
                      known_params_version=self.params_version)
        if task.full_shard:
            raise FullShardUnsupported(task)
        if task.kind == pb.GRADIENT:
            if hasattr(self.game, "keep_graph"):
                self.game.keep_graph = (
                    self._products_follow or task.fused_vjp
                    or task.fused_jvp
                    or task.phase_label.startswith("spectrum"))
            self.game.draw_minibatches(task.num_samples, task.seed)
            request = pb.SubmitGradientRequest(**header)
            for k in range(task.num_samples):
                g = np.asarray(self.game.gradient(self.params, k),
                               dtype=np.float64)
                request.gradients.append(self._encode(g, task.players))
                # Fused products on the gradient as the server decodes it.
                sent = (decode_vector(request.gradients[-1], self._layout)
                        if self._wire_dtype and (task.fused_vjp
                                                 or task.fused_jvp) else g)
                if task.fused_vjp:
                    request.vjp.append(
                        self._encode(self.game.vjp(self.params, sent, k)))
                if task.fused_jvp:
                    request.jvp.append(
                        self._encode(self.game.jvp(self.params, sent, k)))
                if k == 0:
                    self._gradient = g
            if task.phase == 0:
                self._products_follow = False
            return self._link.submit_gradient(request)
        if task.kind == pb.CROSS_GRADIENT:
            names = [p.name for p in self.game.players()]
            if task.loss_player not in names:
                raise ValueError(
                    f"the server asks for the gradients of player "
                    f"{task.loss_player!r}'s loss; the game has players "
                    f"{names}")
            player = names.index(task.loss_player)
            self.game.draw_minibatches(task.num_samples, task.seed)
            request = pb.SubmitGradientRequest(
                loss_player=task.loss_player, **header)
            for k in range(task.num_samples):
                g = np.asarray(self.game.loss_gradient(self.params, player, k),
                               dtype=np.float64)
                request.gradients.append(self._encode(g, task.players))
            return self._link.submit_gradient(request)
        if not task.phase_label.startswith("spectrum"):
            self._products_follow = True
        request = pb.SubmitJacobianProductsRequest(**header)
        for k, probe_message in enumerate(task.probes):
            probe = decode_vector(probe_message, self._layout)
            if task.vjp:
                request.vjp.append(
                    self._encode(self.game.vjp(self.params, probe, k)))
            if task.jvp:
                request.jvp.append(
                    self._encode(self.game.jvp(self.params, probe, k)))
        return self._link.submit_products(request)
