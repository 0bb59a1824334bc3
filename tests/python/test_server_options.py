"""Server options of the PyTorch-workers contract, through the real
gameopt_server with hand-written workers over the raw gRPC stubs:

- learning-rate schedules: a SGD session with each schedule follows
  torch.optim.SGD + the matching torch.optim.lr_scheduler step by step
  (float64, relative 1e-12);
- reported scalars: their per-step mean shows in GetSession and GetMetrics;
- resume_by_name: a restarted worker rejoins under its name as the same id.

The session configs are built with the protobuf classes directly.
"""

import math

import grpc
import numpy as np
import pytest
import torch

from gameopt._stubs import load

pb, pb_grpc = load()

# The server's closed form and torch's recursive lr updates differ in the
# last bits of the learning rate; the parameters stay within this.
RELATIVE = 1e-12
STEPS = 12
LR0 = 0.1

# A 2-player game with a linear field xi(x) = J x + c (x = (u, v)).
J = np.array([[1.0, 0.2, 0.5, -0.3],
              [0.1, 0.8, 0.4, 0.6],
              [-0.5, -0.4, 0.9, 0.1],
              [0.3, -0.6, 0.2, 1.1]])
C = np.array([0.3, -0.2, 0.5, 0.1])
X0 = np.array([1.0, -1.0, 0.5, 2.0])
PLAYERS = ["u", "v"]


def xi(x):
    return J @ x + C


def stub(address):
    return pb_grpc.GameOptimizerStub(grpc.insecure_channel(address))


def tensor(values, name="w"):
    values = np.asarray(values, dtype="<f8")
    return pb.Tensor(name=name, dtype=pb.FLOAT64, shape=[values.size],
                     data=values.tobytes())


def session_config(schedule=None, workers=1):
    config = pb.SessionConfig(name="options", dtype=pb.FLOAT64,
                              workers_per_round=workers, max_steps=STEPS,
                              phase_deadline_seconds=30)
    config.algorithm.kind = pb.SIMGD
    for p, name in enumerate(PLAYERS):
        player = config.players.add(name=name)
        player.tensors.append(tensor(X0[2 * p:2 * p + 2]))
        player.optimizer.kind = pb.SGD
        player.optimizer.learning_rate = LR0
        if schedule is not None:
            player.optimizer.schedule.CopyFrom(schedule)
    return config


def vector(x, players):
    out = pb.Vector()
    for p, name in enumerate(PLAYERS):
        if name in players:
            out.players.add(player=name).tensors.append(
                tensor(x[2 * p:2 * p + 2]))
    return out


def decode(message):
    x = np.zeros(4)
    for p, player in enumerate(message.players):
        index = PLAYERS.index(player.player)
        x[2 * index:2 * index + 2] = np.frombuffer(player.tensors[0].data,
                                                   dtype="<f8")
    return x


def play(client, session_id, name="w", scalars=None):
    """One worker with exact gradients until DONE; the points it got."""
    response = client.JoinSession(pb.JoinSessionRequest(
        session_id=session_id, worker_name=name))
    worker_id = response.worker_id
    points = []
    x = None
    while response.task.kind != pb.DONE:
        task = response.task
        if task.params_included:
            x = decode(task.params)
        points.append(x.copy())
        request = pb.SubmitGradientRequest(
            session_id=session_id, worker_id=worker_id, round=task.round,
            step=task.step, phase=task.phase,
            known_params_version=task.params_version)
        request.gradients.append(vector(xi(x), task.players))
        for key, value in (scalars(task.step) if scalars else {}).items():
            request.scalars.add(name=key, value=value)
        response = client.SubmitGradient(request)
    points.append(decode(response.task.params))
    return points


def torch_points(make_scheduler):
    params = [torch.tensor(X0[0:2], dtype=torch.float64, requires_grad=True),
              torch.tensor(X0[2:4], dtype=torch.float64, requires_grad=True)]
    opt = torch.optim.SGD(params, lr=LR0)
    scheduler = make_scheduler(opt)
    points = [X0.copy()]
    for _ in range(STEPS):
        x = torch.cat([p.detach() for p in params]).numpy()
        g = xi(x)
        params[0].grad = torch.from_numpy(g[0:2].copy())
        params[1].grad = torch.from_numpy(g[2:4].copy())
        opt.step()
        if scheduler is not None:
            scheduler.step()
        points.append(torch.cat([p.detach() for p in params]).numpy().copy())
    return points


S = pb.LearningRateSchedule
lr_scheduler = torch.optim.lr_scheduler
SCHEDULES = {
    "constant": (None, lambda opt: None),
    "step": (S(kind=S.STEP, gamma=0.5, step_size=3),
             lambda opt: lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)),
    "multistep": (S(kind=S.MULTI_STEP, gamma=0.3, milestones=[2, 5, 9]),
                  lambda opt: lr_scheduler.MultiStepLR(
                      opt, milestones=[2, 5, 9], gamma=0.3)),
    "exponential": (S(kind=S.EXPONENTIAL, gamma=0.8),
                    lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.8)),
    "cosine": (S(kind=S.COSINE, t_max=8, eta_min=0.01),
               lambda opt: lr_scheduler.CosineAnnealingLR(
                   opt, T_max=8, eta_min=0.01)),
    "linear": (S(kind=S.LINEAR, start_factor=0.25, end_factor=0.9,
                 total_steps=6),
               lambda opt: lr_scheduler.LinearLR(
                   opt, start_factor=0.25, end_factor=0.9, total_iters=6)),
}


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_sgd_follows_torch_lr_scheduler_step_by_step(kind, server):
    schedule, make_scheduler = SCHEDULES[kind]
    client = stub(server.address)
    session_id = client.CreateSession(pb.CreateSessionRequest(
        config=session_config(schedule))).session_id
    got = play(client, session_id)
    expected = torch_points(make_scheduler)
    assert len(got) == len(expected) == STEPS + 1
    for t, (a, b) in enumerate(zip(got, expected)):
        scale = np.abs(b).max()
        assert np.abs(a - b).max() <= RELATIVE * scale, (
            f"{kind}: step {t}: server {a} torch {b}")
    metrics = client.GetMetrics(pb.GetMetricsRequest(session_id=session_id))
    rates = list(metrics.sessions[0].learning_rate)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR0)
    scheduler = make_scheduler(opt)
    for _ in range(STEPS):
        opt.step()
        if scheduler is not None:
            scheduler.step()
    assert rates == pytest.approx([opt.param_groups[0]["lr"]] * 2,
                                  rel=RELATIVE)
    # The default kind leaves the config as it was.
    status = client.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert status.config.players[1].optimizer.HasField("schedule") == (
        schedule is not None)


def test_invalid_schedule_names_the_field(server):
    client = stub(server.address)
    config = session_config(S(kind=S.STEP, gamma=0.5, step_size=0))
    with pytest.raises(grpc.RpcError) as error:
        client.CreateSession(pb.CreateSessionRequest(config=config))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "players[0].optimizer.schedule.step_size" in error.value.details()


def test_reported_scalars_show_their_last_step_mean(server):
    client = stub(server.address)
    session_id = client.CreateSession(pb.CreateSessionRequest(
        config=session_config())).session_id
    play(client, session_id,
         scalars=lambda step: {"loss/u": float(step), "acc": 0.5})
    status = client.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert {s.name: s.value for s in status.scalars} == {
        "acc": 0.5, "loss/u": STEPS - 1.0}
    metrics = client.GetMetrics(pb.GetMetricsRequest(session_id=session_id))
    assert {s.name: s.value for s in metrics.sessions[0].scalars} == {
        "acc": 0.5, "loss/u": STEPS - 1.0}


def test_a_bad_scalar_is_invalid_argument_naming_it(server):
    client = stub(server.address)
    session_id = client.CreateSession(pb.CreateSessionRequest(
        config=session_config())).session_id
    task = client.JoinSession(pb.JoinSessionRequest(session_id=session_id))
    request = pb.SubmitGradientRequest(
        session_id=session_id, worker_id=task.worker_id, round=task.task.round)
    request.gradients.append(vector(X0, PLAYERS))
    request.scalars.add(name="loss", value=math.inf)
    with pytest.raises(grpc.RpcError) as error:
        client.SubmitGradient(request)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "scalars[0] ('loss')" in error.value.details()


def test_resume_by_name_rejoins_as_the_same_worker(server):
    client = stub(server.address)
    session_id = client.CreateSession(pb.CreateSessionRequest(
        config=session_config(workers=2))).session_id
    first = client.JoinSession(pb.JoinSessionRequest(
        session_id=session_id, worker_name="rank0", resume_by_name=True))
    client.LeaveSession(pb.LeaveSessionRequest(
        session_id=session_id, worker_id=first.worker_id))
    again = client.JoinSession(pb.JoinSessionRequest(
        session_id=session_id, worker_name="rank0", resume_by_name=True))
    assert again.worker_id == first.worker_id
    status = client.GetSession(pb.GetSessionRequest(session_id=session_id))
    assert [(w.worker_id, w.name, w.state) for w in status.workers] == [
        (first.worker_id, "rank0", "active")]


def bilinear_config(algorithm, fused, dtype):
    """The Node worker's bilinear game (x^T y), local estimator."""
    config = pb.SessionConfig(name="fused", dtype=dtype, max_steps=15,
                              samples_per_worker=2, phase_deadline_seconds=60)
    config.algorithm.kind = algorithm
    config.algorithm.estimator = pb.LOCAL
    config.algorithm.gamma = 0.5
    config.algorithm.fuse_local_products = fused
    for name, start in (("x", 1.0), ("y", -0.7)):
        player = config.players.add(name=name)
        player.tensors.append(tensor([start], name=name))
        player.optimizer.kind = pb.SGD
        player.optimizer.learning_rate = 0.1
    return config


@pytest.mark.parametrize("dtype", [pb.FLOAT64, pb.FLOAT32])
@pytest.mark.parametrize("algorithm", [pb.CONOPT, pb.SGA])
def test_node_worker_answers_fused_tasks_bit_identically(
        algorithm, dtype, node, server):
    import subprocess

    from conftest import NODE_DIR

    client = stub(server.address)
    finals, rounds = {}, {}
    for fused in (False, True):
        session_id = client.CreateSession(pb.CreateSessionRequest(
            config=bilinear_config(algorithm, fused, dtype))).session_id
        result = subprocess.run(
            [node, str(NODE_DIR / "worker.js"), server.address, session_id],
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        params = client.GetParameters(
            pb.GetParametersRequest(session_id=session_id))
        assert params.step == 15
        finals[fused] = [t.data for p in params.params.players
                         for t in p.tensors]
        rounds[fused] = client.GetSession(
            pb.GetSessionRequest(session_id=session_id)).round
    assert finals[True] == finals[False]
    assert rounds == {False: 30, True: 15}  # one round per step


def test_adaptive_gamma_option_gets_the_dirac_gan_out_of_the_trap(server):
    """SessionOptions.adaptive_gamma: the Python builder sets the algorithm's
    adaptive_gamma and the field's spectrum schedule as the C++ one does, and
    the server then takes the Dirac-GAN from a trapping gamma (10: 4.2 from
    the equilibrium after 500 steps with a fixed gamma) to within 1e-6."""
    import gameopt
    game = gameopt.DiracGan("gan")
    options = gameopt.SessionOptions(
        algorithm="conopt", optimizer="sgd", learning_rate=0.2, gamma=10.0,
        adaptive_gamma=True, adaptive_gamma_every=10, max_steps=500,
        float64=True)
    config = gameopt.build_session_config(game, options=options)
    assert config.algorithm.adaptive_gamma.enabled
    assert config.spectrum.every_steps == 10
    assert config.spectrum.options[0].operator == pb.ALGORITHM_FIELD
    assert config.spectrum.options[0].smallest_real
    with gameopt.Client(server.address) as client:
        session_id = client.create_session(config)
        gameopt.Worker(server.address, session_id, game).run()
        status = client.get_session(session_id)
        params = client.get_parameters(session_id, game.players())
    assert status.gamma < 10.0
    assert len(status.gamma_trajectory) >= 1
    assert np.linalg.norm(params.flat) < 1e-6


def test_adaptive_gamma_with_another_algorithm_is_warned_about():
    import gameopt
    with pytest.warns(UserWarning, match="'adaptive_gamma' is read only by "
                      "algorithm conopt"):
        gameopt.build_session_config(
            gameopt.DiracGan("gan"),
            options=gameopt.SessionOptions(algorithm="simgd",
                                           adaptive_gamma=True))
