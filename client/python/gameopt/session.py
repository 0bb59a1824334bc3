"""Sessions: building a SessionConfig and the session management RPCs.

SessionOptions mirrors client/worker/session_builder.h (the names of
gameopt_client's flags); build_session_config() produces the same
SessionConfig as the C++ BuildSessionConfig for the same game and options.
"""

import dataclasses
import time
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import grpc
import numpy as np

from gameopt._stubs import pb, pb_grpc
# make_channel: re-exported (gameopt.make_channel, gameopt.session.make_channel).
from gameopt.channel import channel_for, make_channel  # noqa: F401
from gameopt.errors import ErrorStub, suggest, unknown_option
from gameopt.tensors import FlatLayout, PlayerSpec, decode_vector, \
    encode_vector

_ALGORITHMS = ("simgd", "altgd", "conopt", "sga", "extragradient",
               "optimistic", "optimistic_adam", "extrapolation_from_the_past",
               "lead", "cgd", "acgd", "shgd", "l_svrhg", "lola", "sos")
_OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")
_ESTIMATORS = ("local", "pooled", "unbiased")
_PRESETS = {"pytorch": pb.PYTORCH, "tf1": pb.TENSORFLOW1,
            "tensorflow1": pb.TENSORFLOW1}


@dataclasses.dataclass
class SessionOptions:
    """See proto/gameopt/v1/gameopt.proto for the meaning of each field."""
    name: str = ""
    # simgd altgd conopt sga extragradient optimistic optimistic_adam
    # extrapolation_from_the_past lead cgd acgd shgd l_svrhg
    algorithm: str = "simgd"
    optimizer: str = "sgd"     # sgd momentum nesterov rmsprop adam
    rmsprop_preset: str = "pytorch"  # or "tf1"
    estimator: str = "pooled"  # local pooled unbiased
    learning_rate: float = 0.01
    player_learning_rate: Dict[str, float] = dataclasses.field(
        default_factory=dict)  # overrides per player
    momentum: float = 0.9  # momentum: (-1, 1), negative = negative momentum
    gamma: Optional[float] = None    # conopt; server default 1
    # conopt: the server adapts gamma (AlgorithmConfig.adaptive_gamma, the
    # rule in server/README.md), starting from `gamma`, with an estimate of
    # the field's smallest-real eigenvalue every adaptive_gamma_every steps
    # (the session's spectrum schedule).
    adaptive_gamma: bool = False
    adaptive_gamma_every: int = 10
    # Operator products one of those estimates may take (0 = the server's
    # 2,000). On a GAN the smallest-real estimate rarely converges, and
    # every product is a worker round: cap it.
    adaptive_gamma_max_applications: int = 0
    lambda0: Optional[float] = None  # sga; server default 1
    sga_alignment: bool = True
    # altgd: e.g. [("discriminator", 5), ("generator", 1)].
    altgd_order: List[Tuple[str, int]] = dataclasses.field(
        default_factory=list)
    extragradient_frozen_moments: bool = False
    lookahead_k: int = 0
    lookahead_alpha: float = 0.5
    clip_global_norm: float = 0.0
    clip_value: Dict[str, float] = dataclasses.field(
        default_factory=dict)  # per player (WGAN)
    workers: int = 1
    quorum: int = 0
    samples_per_worker: int = 1
    phase_deadline_seconds: float = 60.0
    # A worker not heard from for this long is dropped (the worker
    # libraries send Heartbeat while they hold a task); 0 = the server's
    # default (10 s), negative = no lease.
    worker_lease_seconds: float = 0.0
    max_steps: int = 0
    seed: int = 0
    # The session's dtype (parameters, optimizer slots, wire tensors):
    # float32 unless float64 (exact comparisons).
    float64: bool = False
    drop_invalid_samples: bool = False
    # Compressed wire (WireConfig), both directions: "" (none), "bfloat16",
    # "float16" or "int8_block"; wire_stochastic rounds what each side
    # sends stochastically (unbiased). GameOptimizer follows the session's;
    # a gameopt.Worker is told with wire_dtype / stochastic_rounding.
    wire: str = ""
    wire_stochastic: bool = False
    # LOCAL estimator with conopt/sga: products travel with the gradients
    # (one round per step; AlgorithmConfig.fuse_local_products).
    fuse_local_products: bool = False
    # conopt/sga with estimator pooled or unbiased: report the estimator's
    # bias |P - U| / |P| every step (StepDiagnostics.relative_bias;
    # AlgorithmConfig.bias_meter). Same steps; one more VJP per sample.
    bias_meter: bool = False
    # Learning-rate schedule of every player (a gameopt.schedules object
    # such as StepLR(100, 0.5), or a pb.LearningRateSchedule), and per
    # player overrides; server-side, so checkpoints keep them.
    schedule: object = None
    player_schedule: Dict[str, object] = dataclasses.field(
        default_factory=dict)
    lead_alpha: Optional[float] = None  # lead; server default 0.1
    # l_svrhg: the snapshot's move probability; server default 0.1.
    svrhg_probability: Optional[float] = None
    # conopt with estimator unbiased: variance-reduce the correction with
    # l_svrhg's snapshot (SVRE-style; the workers must answer full-shard
    # tasks: the C++ worker library does).
    svrhg_correction: bool = False
    # adam (and optimistic_adam); server defaults 0.9 and 0.999.
    beta1: Optional[float] = None
    beta2: Optional[float] = None
    # cgd / acgd: the Krylov solve of each step (None / 0: the server's
    # defaults 1e-6 and 50); cgd_zero_sum declares l_2 = -l_1 (conjugate
    # gradient, else GMRES). acgd: beta and epsilon of the RMS scaling
    # (defaults 0.99, 1e-5).
    cgd_tolerance: Optional[float] = None
    cgd_max_iterations: int = 0
    cgd_zero_sum: bool = False
    acgd_beta: Optional[float] = None
    acgd_epsilon: Optional[float] = None
    # lola / sos: the opponents' look-ahead step alpha, and SOS's a and b
    # (None: the server's defaults 1, 0.5, 0.1).
    lola_alpha: Optional[float] = None
    sos_a: Optional[float] = None
    sos_b: Optional[float] = None


# torch.optim spellings accepted for SessionOptions fields.
OPTION_ALIASES = {"lr": "learning_rate", "lambda_": "lambda0",
                  "steps": "max_steps", "num_workers": "workers"}

# Options that only some algorithms / optimizers / estimators read:
# option -> (what reads it, predicate on SessionOptions).
_USED_BY = {
    "gamma": ("algorithm conopt", lambda o: o.algorithm.lower() == "conopt"),
    "adaptive_gamma": ("algorithm conopt",
                       lambda o: o.algorithm.lower() == "conopt"),
    "adaptive_gamma_every": ("adaptive_gamma", lambda o: o.adaptive_gamma),
    "adaptive_gamma_max_applications": ("adaptive_gamma",
                                        lambda o: o.adaptive_gamma),
    "lambda0": ("algorithm sga", lambda o: o.algorithm.lower() == "sga"),
    "sga_alignment": ("algorithm sga",
                      lambda o: o.algorithm.lower() == "sga"),
    "altgd_order": ("algorithm altgd",
                    lambda o: o.algorithm.lower() == "altgd"),
    "extragradient_frozen_moments": (
        "algorithm extragradient",
        lambda o: o.algorithm.lower() == "extragradient"),
    "estimator": ("algorithms conopt, sga, shgd and l_svrhg",
                  lambda o: o.algorithm.lower() in ("conopt", "sga", "shgd",
                                                    "l_svrhg")),
    "svrhg_probability": ("algorithm l_svrhg or svrhg_correction",
                          lambda o: o.algorithm.lower() == "l_svrhg"
                          or o.svrhg_correction),
    "svrhg_correction": ("algorithm conopt",
                         lambda o: o.algorithm.lower() == "conopt"),
    "fuse_local_products": (
        "algorithms conopt and sga with estimator local",
        lambda o: o.algorithm.lower() in ("conopt", "sga")
        and o.estimator.lower() == "local"),
    "bias_meter": (
        "algorithms conopt and sga with estimator pooled or unbiased",
        lambda o: o.algorithm.lower() in ("conopt", "sga")
        and o.estimator.lower() != "local"),
    "rmsprop_preset": ("optimizer rmsprop",
                       lambda o: o.optimizer.lower() == "rmsprop"),
    "lookahead_alpha": ("lookahead_k > 0", lambda o: o.lookahead_k > 0),
    "lead_alpha": ("algorithm lead", lambda o: o.algorithm.lower() == "lead"),
    "beta1": ("optimizer adam", lambda o: o.optimizer.lower() == "adam"),
    "beta2": ("optimizer adam", lambda o: o.optimizer.lower() == "adam"),
    "cgd_tolerance": ("algorithms cgd and acgd",
                      lambda o: o.algorithm.lower() in ("cgd", "acgd")),
    "cgd_max_iterations": ("algorithms cgd and acgd",
                           lambda o: o.algorithm.lower() in ("cgd", "acgd")),
    "cgd_zero_sum": ("algorithms cgd and acgd",
                     lambda o: o.algorithm.lower() in ("cgd", "acgd")),
    "acgd_beta": ("algorithm acgd", lambda o: o.algorithm.lower() == "acgd"),
    "acgd_epsilon": ("algorithm acgd",
                     lambda o: o.algorithm.lower() == "acgd"),
    "lola_alpha": ("algorithms lola and sos",
                   lambda o: o.algorithm.lower() in ("lola", "sos")),
    "sos_a": ("algorithm sos", lambda o: o.algorithm.lower() == "sos"),
    "sos_b": ("algorithm sos", lambda o: o.algorithm.lower() == "sos"),
}


def option_fields() -> List[str]:
    return [f.name for f in dataclasses.fields(SessionOptions)]


def canonical_options(overrides: Mapping[str, object]) -> Dict[str, object]:
    """Keyword options with torch spellings (lr) renamed; TypeError naming
    the closest field for an unknown one."""
    known = option_fields()
    out = {}
    for key, value in overrides.items():
        name = OPTION_ALIASES.get(key, key)
        if name not in known:
            raise unknown_option("session option", key,
                                 known + list(OPTION_ALIASES),
                                 "see gameopt.SessionOptions")
        if name in out:
            raise TypeError(f"option '{name}' given twice (as '{key}')")
        out[name] = value
    return out


def ignored_options(options: SessionOptions) -> List[str]:
    """Messages for options set away from their default that the chosen
    algorithm, optimizer or estimator does not read."""
    defaults = SessionOptions()
    problems = []
    for name, (reader, used) in _USED_BY.items():
        if getattr(options, name) == getattr(defaults, name):
            continue
        if not used(options):
            problems.append(f"option '{name}' is read only by {reader} "
                            f"(algorithm '{options.algorithm}', optimizer "
                            f"'{options.optimizer}', estimator "
                            f"'{options.estimator}')")
    return problems


def schedule_proto(schedule) -> Optional["pb.LearningRateSchedule"]:
    if schedule is None:
        return None
    if isinstance(schedule, pb.LearningRateSchedule):
        return schedule
    if hasattr(schedule, "to_proto"):
        return schedule.to_proto()
    raise TypeError(f"schedule {schedule!r}: use gameopt.StepLR, "
                    f"MultiStepLR, ExponentialLR, CosineAnnealingLR, "
                    f"LinearLR or a pb.LearningRateSchedule")


def _enum(what: str, name: str, known: Sequence[str], value_of) -> int:
    if name.lower() not in known:
        raise ValueError(f"unknown {what} '{name}'"
                         f"{suggest(name.lower(), known)} (expected one of: "
                         f"{', '.join(known)})")
    return value_of(name.lower())


def build_session_config(players, initial=None,
                         options: Optional[SessionOptions] = None,
                         **overrides) -> "pb.SessionConfig":
    """The SessionConfig of a game: `players` is a Game (its players(),
    initial_parameters() and name are used) or a sequence of PlayerSpec starting at
    `initial` (a flat vector in the players' layout, or player -> tensor ->
    array). Keyword overrides replace fields of `options` (torch's `lr` is
    accepted for learning_rate). TypeError on an unknown option (naming the
    closest), ValueError on unknown algorithm, optimizer, estimator or
    preset names; a warning for options the chosen algorithm ignores."""
    options = dataclasses.replace(options or SessionOptions(),
                                  **canonical_options(overrides))
    for problem in ignored_options(options):
        warnings.warn(problem, stacklevel=2)
    default_name = "gameopt"
    if hasattr(players, "players"):  # a Game
        game = players
        players = game.players()
        default_name = getattr(game, "name", default_name)
        if initial is None:
            initial = game.initial_parameters()
    if initial is None:
        raise ValueError("build_session_config needs initial values")
    layout = FlatLayout(players)
    if isinstance(initial, Mapping):
        initial = layout.join(initial)
    initial = np.asarray(initial, dtype=np.float64).reshape(-1)
    if initial.size != layout.dimension:
        raise ValueError(f"initial values: {initial.size} numbers for a "
                         f"game of dimension {layout.dimension}")
    algorithm = _enum("algorithm", options.algorithm, _ALGORITHMS,
                      lambda n: pb.Algorithm.Value(n.upper()))
    optimizer = _enum("optimizer", options.optimizer, _OPTIMIZERS,
                      lambda n: pb.Optimizer.Value(n.upper()))
    estimator = _enum("estimator", options.estimator, _ESTIMATORS,
                      lambda n: pb.Estimator.Value(n.upper()))
    preset = _enum("RMSProp preset", options.rmsprop_preset, ("pytorch", "tf1",
                   "tensorflow1"), _PRESETS.__getitem__)

    config = pb.SessionConfig(
        name=options.name or default_name,
        dtype=pb.FLOAT64 if options.float64 else pb.FLOAT32)
    values = encode_vector(initial, layout, None, pb.FLOAT64)
    for spec, tensors in zip(players, values.players):
        player = config.players.add(name=spec.name)
        player.tensors.extend(tensors.tensors)
        opt = player.optimizer
        opt.kind = optimizer
        opt.learning_rate = options.player_learning_rate.get(
            spec.name, options.learning_rate)
        opt.momentum = options.momentum
        if options.beta1 is not None:
            opt.beta1 = options.beta1
        if options.beta2 is not None:
            opt.beta2 = options.beta2
        opt.rmsprop_preset = preset
        if spec.name in options.clip_value:
            opt.clip_value = options.clip_value[spec.name]
        schedule = schedule_proto(options.player_schedule.get(
            spec.name, options.schedule))
        if schedule is not None:
            opt.schedule.CopyFrom(schedule)
    names = [spec.name for spec in players]
    for name in set(options.player_learning_rate) | set(
            options.player_schedule) | set(options.clip_value):
        if name not in names:
            raise ValueError(f"per-player option for unknown player "
                             f"'{name}'{suggest(name, names)} (players: "
                             f"{', '.join(names)})")

    a = config.algorithm
    a.kind = algorithm
    if options.gamma is not None:
        a.gamma = options.gamma
    if options.lambda0 is not None:
        a.lambda0 = options.lambda0
    a.sga_no_alignment = not options.sga_alignment
    for player, steps in options.altgd_order:
        a.altgd_order.add(player=player, steps=steps)
    a.extragradient_frozen_moments = options.extragradient_frozen_moments
    a.lookahead_k = options.lookahead_k
    a.lookahead_alpha = options.lookahead_alpha
    a.estimator = estimator
    a.clip_global_norm = options.clip_global_norm
    a.fuse_local_products = options.fuse_local_products
    if options.adaptive_gamma:
        a.adaptive_gamma.enabled = True
        schedule = config.spectrum
        schedule.every_steps = options.adaptive_gamma_every
        field = schedule.options.add()
        field.operator = pb.ALGORITHM_FIELD
        field.k = 1
        field.smallest_real = True
        field.max_applications = options.adaptive_gamma_max_applications
    if options.lead_alpha is not None:
        a.lead_alpha = options.lead_alpha
    a.svrhg_correction = options.svrhg_correction
    if (options.svrhg_probability is not None
            and (options.algorithm.lower() == "l_svrhg"
                 or options.svrhg_correction)):
        a.svrhg_probability = options.svrhg_probability
    if options.algorithm.lower() in ("cgd", "acgd"):
        if options.cgd_tolerance is not None:
            a.cgd_tolerance = options.cgd_tolerance
        a.cgd_max_iterations = options.cgd_max_iterations
        a.cgd_zero_sum = options.cgd_zero_sum
    if options.algorithm.lower() == "acgd":
        if options.acgd_beta is not None:
            a.acgd_beta = options.acgd_beta
        if options.acgd_epsilon is not None:
            a.acgd_epsilon = options.acgd_epsilon
    if options.algorithm.lower() in ("lola", "sos"):
        if options.lola_alpha is not None:
            a.lola_alpha = options.lola_alpha
        if options.sos_a is not None:
            a.sos_a = options.sos_a
        if options.sos_b is not None:
            a.sos_b = options.sos_b
    a.bias_meter = options.bias_meter

    config.workers_per_round = options.workers
    config.quorum = options.quorum
    config.phase_deadline_seconds = options.phase_deadline_seconds
    config.worker_lease_seconds = options.worker_lease_seconds
    config.samples_per_worker = options.samples_per_worker
    config.max_steps = options.max_steps
    config.seed = options.seed
    config.invalid_sample_policy = (pb.DROP if options.drop_invalid_samples
                                    else pb.REJECT)
    if options.wire or options.wire_stochastic:
        wire = wire_dtype(options.wire)
        config.wire.to_workers = wire
        config.wire.from_workers = wire
        config.wire.stochastic_rounding = options.wire_stochastic
    return config


def wire_dtype(name: str) -> int:
    """The wire DType of SessionOptions.wire (0 for "" and "none")."""
    names = {"": 0, "none": 0, "bfloat16": pb.BFLOAT16,
             "float16": pb.FLOAT16, "int8_block": pb.INT8_BLOCK}
    if name not in names:
        raise ValueError(f"unknown wire dtype '{name}': none, bfloat16, "
                         f"float16 or int8_block")
    return names[name]


@dataclasses.dataclass
class Parameters:
    step: int
    params_version: int
    vector: "pb.Vector"
    flat: Optional[np.ndarray] = None  # when the players were given

    def tensors(self) -> Dict[str, Dict[str, np.ndarray]]:
        """player -> tensor -> float64 array of the tensor's shape."""
        out = {}
        for player in self.vector.players:
            out[player.player] = {}
            for tensor in player.tensors:
                wire = "<f8" if tensor.dtype == pb.FLOAT64 else "<f4"
                out[player.player][tensor.name] = np.frombuffer(
                    tensor.data, dtype=wire).astype(np.float64).reshape(
                        tuple(tensor.shape))  # never compressed
        return out


class Client:
    """Session management over one channel. Methods raise gameopt.Error (a
    grpc.RpcError printed as `CODE: message`) with the server's status (see
    the codes in gameopt.proto). With an address,
    `channel_options` are make_channel's: root_certificates, token,
    certificate_chain, private_key."""

    def __init__(self, address_or_channel, max_message_mb: int = 1024,
                 timeout: float = 60.0, **channel_options):
        self.channel, self._owned = channel_for(
            address_or_channel, max_message_mb, **channel_options)
        self.stub = ErrorStub(pb_grpc.GameOptimizerStub(self.channel))
        self.timeout = timeout

    def create_session(self, config: "pb.SessionConfig",
                       session_id: str = "") -> str:
        """The new session's id: `session_id` when given (e.g. one a tokens
        file names; ALREADY_EXISTS if taken), else the server's choice."""
        request = pb.CreateSessionRequest(config=config,
                                          session_id=session_id)
        return self.stub.CreateSession(request,
                                       timeout=self.timeout).session_id

    def get_session(self, session_id: str) -> "pb.SessionStatus":
        return self.stub.GetSession(
            pb.GetSessionRequest(session_id=session_id), timeout=self.timeout)

    def list_sessions(self) -> List["pb.SessionStatus"]:
        return list(self.stub.ListSessions(pb.ListSessionsRequest(),
                                           timeout=self.timeout).sessions)

    def find_session(self, name: str, wait: float = 0.0,
                     poll: float = 0.2) -> str:
        """The id of the one unfinished session named `name`
        (SessionConfig.name), waiting up to `wait` seconds for it to appear
        (and for the server to answer). LookupError when there is none,
        ValueError when there are several (pass the id instead); as
        `gameopt_client work --session_name`."""
        give_up = time.monotonic() + wait
        last_error = None
        while True:
            try:
                found = [s.session_id for s in self.stub.ListSessions(
                    pb.ListSessionsRequest(), timeout=max(poll * 5, 1.0),
                    wait_for_ready=True).sessions
                    if s.config.name == name and not s.done]
            except grpc.RpcError as error:
                found, last_error = [], error
            if len(found) > 1:
                raise ValueError(f"{len(found)} unfinished sessions named "
                                 f"'{name}' ({', '.join(found)}): pass the "
                                 f"session id instead")
            if found:
                return found[0]
            if time.monotonic() + poll > give_up:
                detail = (f" (last error: {last_error.code().name})"
                          if last_error is not None else "")
                raise LookupError(f"no unfinished session named '{name}' "
                                  f"after {wait:g} s{detail}")
            time.sleep(poll)

    def delete_session(self, session_id: str) -> None:
        self.stub.DeleteSession(pb.DeleteSessionRequest(session_id=session_id),
                                timeout=self.timeout)

    def get_parameters(self, session_id: str,
                       players: Optional[Sequence[PlayerSpec]] = None
                       ) -> Parameters:
        """x now; with `players`, also as a flat vector in their layout."""
        response = self.stub.GetParameters(
            pb.GetParametersRequest(session_id=session_id),
            timeout=self.timeout)
        flat = (decode_vector(response.params, FlatLayout(players))
                if players is not None else None)
        return Parameters(response.step, response.params_version,
                          response.params, flat)

    def estimate_spectrum(self, session_id: str, operator: str = "jacobian",
                          k: int = 0, tol: float = 0.0,
                          max_applications: int = 0,
                          timeout: Optional[float] = None,
                          smallest_real: bool = False) -> "pb.Spectrum":
        """Eigenvalues of J ("jacobian") or of the algorithm's field
        ("field") at the session's next step boundary, computed by its
        running workers; waits for the estimate (0 = server defaults).
        smallest_real: also the k of smallest real part
        (Spectrum.smallest_real)."""
        operators = {"jacobian": pb.GAME_JACOBIAN,
                     "field": pb.ALGORITHM_FIELD}
        if operator not in operators:
            raise ValueError(f"operator {operator!r}: use one of "
                             f"{sorted(operators)}")
        options = pb.SpectrumOptions(operator=operators[operator], k=k,
                                     tol=tol,
                                     max_applications=max_applications,
                                     smallest_real=smallest_real)
        return self.stub.EstimateSpectrum(
            pb.EstimateSpectrumRequest(session_id=session_id,
                                       options=options),
            timeout=timeout or self.timeout)

    def get_metrics(self, session_id: str) -> "pb.SessionMetrics":
        """The session's metrics (scalars, learning rates, timings)."""
        response = self.stub.GetMetrics(
            pb.GetMetricsRequest(session_id=session_id), timeout=self.timeout)
        for metrics in response.sessions:
            return metrics
        raise LookupError(f"no metrics for session '{session_id}'")

    def get_spectrum(self, session_id: str) -> List["pb.Spectrum"]:
        """Every estimate the session finished, oldest first."""
        return list(self.stub.GetSpectrum(
            pb.GetSpectrumRequest(session_id=session_id),
            timeout=self.timeout).spectra)

    def close(self):
        if self._owned:
            self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
