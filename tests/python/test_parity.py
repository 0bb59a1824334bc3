"""The Python worker reaches the C++ worker's parameters (float64).

Each case plays one session with gameopt_client (C++ workers) and one with
the same configuration built in Python and played by Python workers, on the
same server, and compares GetParameters.
"""

import threading
import time

import numpy as np
import pytest

import gameopt
from testutil import only_session, play_cpp, play_threads

# Both sides evaluate the same formulas in float64; the only differences are
# rounding in libm-free arithmetic order (none for these games) and, for the
# d > 1 bilinear game, the QR factorization (LAPACK vs Eigen, ~1e-16).
TOLERANCE = 1e-9


def play_python(client, address, game_factory, workers, **options):
    config = gameopt.build_session_config(game_factory(), workers=workers,
                                          **options, float64=True)
    session_id = client.create_session(config)
    play_threads(lambda i: gameopt.Worker(address, session_id, game_factory(),
                                          name=f"py-{i}").run(),
                 workers, timeout=120)
    return session_id


CASES = {
    "bilinear-conopt": (
        ["--game=bilinear", "--algorithm=conopt", "--gamma=1", "--lr=0.2",
         "--workers=2", "--steps=200"],
        lambda: gameopt.BilinearGame(),
        dict(algorithm="conopt", gamma=1.0, lambda0=1.0,
             learning_rate=0.2, max_steps=200, seed=1), 2),
    "bilinear-d3-extragradient-adam": (
        ["--game=bilinear", "--dim=3", "--game_seed=4",
         "--algorithm=extragradient", "--optimizer=adam", "--lr=0.05",
         "--workers=1", "--steps=100"],
        lambda: gameopt.BilinearGame(d=3, seed=4),
        dict(algorithm="extragradient", optimizer="adam",
             gamma=1.0, lambda0=1.0, learning_rate=0.05, max_steps=100,
             seed=1), 1),
    "dirac-nsgan-sga": (
        ["--game=dirac", "--variant=nsgan", "--algorithm=sga", "--lr=0.2",
         "--workers=1", "--steps=200"],
        lambda: gameopt.DiracGan("nsgan"),
        dict(algorithm="sga", gamma=1.0, lambda0=1.0,
             learning_rate=0.2, max_steps=200, seed=1), 1),
    "dirac-r1-optimistic-rmsprop": (
        ["--game=dirac", "--variant=r1", "--penalty=0.3",
         "--algorithm=optimistic", "--optimizer=rmsprop", "--lr=0.05",
         "--workers=1", "--steps=200"],
        lambda: gameopt.DiracGan("r1", penalty_weight=0.3),
        dict(algorithm="optimistic", optimizer="rmsprop",
             gamma=1.0, lambda0=1.0, learning_rate=0.05, max_steps=200,
             seed=1), 1),
    # Stochastic: two workers x two samples each on instance-noise
    # minibatches, the unbiased estimator (exercises num_samples, the task
    # seeds and the Python port of the C++ random streams).
    "dirac-instance-noise-conopt-unbiased": (
        ["--game=dirac", "--variant=instance-noise", "--noise=0.5",
         "--algorithm=conopt", "--gamma=1", "--estimator=unbiased",
         "--samples_per_worker=2", "--lr=0.2", "--workers=2", "--steps=60",
         "--seed=9"],
        lambda: gameopt.DiracGan("instance-noise", noise_std=0.5),
        dict(algorithm="conopt", gamma=1.0,
             lambda0=1.0, estimator="unbiased", samples_per_worker=2,
             learning_rate=0.2, max_steps=60, seed=9), 2),
    # SHGD: the products round's J^T w_k is the whole direction.
    "dirac-instance-noise-shgd-unbiased": (
        ["--game=dirac", "--variant=instance-noise", "--noise=0.5",
         "--algorithm=shgd", "--estimator=unbiased",
         "--samples_per_worker=2", "--lr=0.2", "--workers=2", "--steps=40",
         "--seed=9"],
        lambda: gameopt.DiracGan("instance-noise", noise_std=0.5),
        dict(algorithm="shgd", estimator="unbiased",
             samples_per_worker=2, learning_rate=0.2, max_steps=40, seed=9),
        2),
    "bilinear-altgd-negative-momentum": (
        ["--game=bilinear", "--algorithm=altgd", "--optimizer=momentum",
         "--momentum=-0.5", "--lr=0.2", "--workers=1", "--steps=200"],
        lambda: gameopt.BilinearGame(),
        dict(algorithm="altgd", optimizer="momentum", momentum=-0.5,
             learning_rate=0.2, max_steps=200, seed=1), 1),
    "dirac-optimistic-adam": (
        ["--game=dirac", "--algorithm=optimistic_adam", "--optimizer=adam",
         "--beta1=0.5", "--beta2=0.9", "--lr=0.05", "--workers=2",
         "--steps=100"],
        lambda: gameopt.DiracGan(),
        dict(algorithm="optimistic_adam", optimizer="adam", beta1=0.5,
             beta2=0.9, learning_rate=0.05, max_steps=100, seed=1), 2),
    "bilinear-d3-extrapolation-from-the-past": (
        ["--game=bilinear", "--dim=3", "--game_seed=4",
         "--algorithm=extrapolation_from_the_past", "--lr=0.1",
         "--workers=1", "--steps=100"],
        lambda: gameopt.BilinearGame(d=3, seed=4),
        dict(algorithm="extrapolation_from_the_past", learning_rate=0.1,
             max_steps=100, seed=1), 1),
    "dirac-nsgan-lead-momentum": (
        ["--game=dirac", "--variant=nsgan", "--algorithm=lead",
         "--optimizer=momentum", "--momentum=0.3", "--lead_alpha=0.5",
         "--lr=0.2", "--workers=2", "--steps=100"],
        lambda: gameopt.DiracGan("nsgan"),
        dict(algorithm="lead", optimizer="momentum", momentum=0.3,
             lead_alpha=0.5, learning_rate=0.2, max_steps=100, seed=1), 2),
    # Opponent shaping: CROSS_GRADIENT tasks answered by the Python
    # BilinearGame's loss_gradient.
    "bilinear-lola": (
        ["--game=bilinear", "--algorithm=lola", "--lola_alpha=0.5",
         "--lr=0.2", "--workers=2", "--steps=100"],
        lambda: gameopt.BilinearGame(),
        dict(algorithm="lola", lola_alpha=0.5, learning_rate=0.2,
             max_steps=100, seed=1), 2),
    "bilinear-d3-sos": (
        ["--game=bilinear", "--dim=3", "--game_seed=4", "--algorithm=sos",
         "--lola_alpha=0.5", "--sos_a=0.5", "--sos_b=0.1", "--lr=0.2",
         "--workers=1", "--steps=100"],
        lambda: gameopt.BilinearGame(d=3, seed=4),
        dict(algorithm="sos", lola_alpha=0.5, sos_a=0.5, sos_b=0.1,
             learning_rate=0.2, max_steps=100, seed=1), 1),
    # Competitive: ACGD's varying number of products rounds per step
    # (conjugate gradient on the zero-sum bilinear game).
    "bilinear-d3-acgd-zero-sum": (
        ["--game=bilinear", "--dim=3", "--game_seed=4", "--algorithm=acgd",
         "--cgd_zero_sum", "--lr=0.2", "--workers=2", "--steps=30"],
        lambda: gameopt.BilinearGame(d=3, seed=4),
        dict(algorithm="acgd", gamma=1.0, lambda0=1.0, cgd_zero_sum=True,
             cgd_tolerance=1e-6, cgd_max_iterations=50, acgd_beta=0.99,
             acgd_epsilon=1e-5, learning_rate=0.2, max_steps=30, seed=1), 2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_python_worker_matches_cpp_worker(case, server, client,
                                          client_binary, workdir):
    flags, factory, options, workers = CASES[case]
    play_cpp(client_binary, server.address, workdir, *flags)
    cpp_session = only_session(client)
    py_session = play_python(client, server.address, factory, workers,
                             **options)

    cpp_status = client.get_session(cpp_session)
    py_status = client.get_session(py_session)
    # The Python SessionConfig is the C++ client's, field for field.
    assert py_status.config == cpp_status.config
    assert py_status.done and cpp_status.done

    players = factory().players()
    cpp = client.get_parameters(cpp_session, players)
    py = client.get_parameters(py_session, players)
    assert py.step == cpp.step == options["max_steps"]
    np.testing.assert_allclose(py.flat, cpp.flat, rtol=0, atol=TOLERANCE)
    assert np.all(np.isfinite(py.flat))


def test_worker_reports_unknown_session(server):
    import grpc
    with pytest.raises(grpc.RpcError) as error:
        gameopt.Worker(server.address, "no-such-session",
                       gameopt.BilinearGame()).run()
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_worker_retries_deadline_exceeded_resubmitting_the_round(
        server, client):
    """A submission that waits at the barrier past the call deadline is
    retried (DEADLINE_EXCEEDED) with the same round until the late second
    worker arrives; the server applies it once, so the result equals an
    undisturbed run."""
    game = gameopt.BilinearGame()
    options = dict(algorithm="conopt", gamma=1.0, learning_rate=0.2,
                   max_steps=20)
    reference = play_python(client, server.address, gameopt.BilinearGame, 2,
                            **options)
    session_id = client.create_session(
        gameopt.build_session_config(game, workers=2, **options, float64=True))
    impatient = gameopt.Worker(server.address, session_id,
                               gameopt.BilinearGame(), call_timeout=0.2,
                               max_backoff=0.05, max_retries=100)
    errors = []

    def run(worker):
        try:
            worker.run()
        except Exception as error:
            errors.append(error)

    first = threading.Thread(target=run, args=(impatient,))
    first.start()
    first.join(timeout=1.0)  # several deadlines pass at the barrier
    assert first.is_alive()
    late = gameopt.Worker(server.address, session_id, gameopt.BilinearGame())
    run(late)
    first.join(timeout=60)
    assert not errors, errors
    players = game.players()
    np.testing.assert_array_equal(
        client.get_parameters(session_id, players).flat,
        client.get_parameters(reference, players).flat)
    assert impatient.tasks_done == late.tasks_done == 40
    assert impatient.retries >= 2  # it did time out at the barrier


class Slow(gameopt.BilinearGame):
    """Takes `delay` seconds per gradient, and `once` more at call `at`."""

    def __init__(self, delay=0.0, once=0.0, at=0):
        super().__init__()
        self.delay, self.once, self.at, self.calls = delay, once, at, 0

    def gradient(self, x, sample):
        self.calls += 1
        time.sleep(self.delay + (self.once if self.calls == self.at else 0))
        return super().gradient(x, sample)


def test_straggler_rejoins_after_failed_precondition(server, client):
    """With quorum 1 a round closes at its deadline without the straggler;
    its late submission fails FAILED_PRECONDITION, and the worker rejoins
    with its id and plays on to DONE."""
    game = gameopt.BilinearGame()
    session_id = client.create_session(gameopt.build_session_config(
        game, algorithm="simgd", learning_rate=0.1, max_steps=40, workers=2,
        quorum=1, phase_deadline_seconds=0.3, float64=True))
    fast = gameopt.Worker(server.address, session_id, Slow(delay=0.03),
                          name="fast")
    slow = gameopt.Worker(server.address, session_id, Slow(once=0.6, at=3),
                          name="slow")
    errors = []

    def run(worker):
        try:
            worker.run()
        except Exception as error:
            errors.append((worker.name, error))

    threads = [threading.Thread(target=run, args=(w,)) for w in (fast, slow)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    status = client.get_session(session_id)
    assert status.done and status.step == 40
    # The slow worker missed rounds, rejoined, and finished too.
    assert slow.rejoins >= 1
    assert slow.tasks_done < fast.tasks_done


def test_l_svrhg_config_and_python_refuses_full_shard_tasks(server, client):
    """L-SVRHG's first step is its full-shard rounds, which the Python
    worker refuses with an error naming the way out (the C++ worker
    library computes them, tests/client/play_test.cc)."""
    config = gameopt.build_session_config(
        gameopt.BilinearGame(), workers=2, algorithm="l_svrhg",
        estimator="unbiased", svrhg_probability=0.25, max_steps=5,
        float64=True)
    assert config.algorithm.kind == gameopt.pb.L_SVRHG
    assert config.algorithm.svrhg_probability == 0.25
    # ConOpt's variance-reduced correction takes the same snapshot option.
    conopt = gameopt.build_session_config(
        gameopt.BilinearGame(), workers=2, algorithm="conopt",
        estimator="unbiased", svrhg_correction=True, svrhg_probability=0.25,
        max_steps=5, float64=True)
    assert conopt.algorithm.svrhg_correction
    assert conopt.algorithm.svrhg_probability == 0.25
    session_id = client.create_session(config)
    with pytest.raises(AssertionError, match="full-shard"):
        play_threads(lambda i: gameopt.Worker(
            server.address, session_id, gameopt.BilinearGame(),
            name=f"py-{i}").run(), 2, timeout=60)
