"""gameopt.sharding: the Python ShardedWorker over 3 gameopt_server processes
ends where one server ends (bitwise: every coordinate sees the same numbers,
see client/worker/sharding.h), builds the same shard sessions as the C++
client, and refuses what cannot be sharded exactly."""

import contextlib

import numpy as np
import pytest

import gameopt
from testutil import play_threads, run

SHARDS = 3
# The C++ and Python bilinear games with d > 1 build A by QR factorizations
# that differ by rounding (LAPACK vs Eigen, ~1e-16): test_parity's bound.
CPP_TOLERANCE = 1e-9


@contextlib.contextmanager
def servers(binary, count):
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(gameopt.LocalServer(binary)).address
               for _ in range(count)]


def play_one_server(address, game_factory, workers, **options):
    with gameopt.Client(address) as client:
        game = game_factory()
        session = client.create_session(gameopt.build_session_config(
            game, workers=workers, **options, float64=True))
        play_threads(lambda i: gameopt.Worker(
            address, session, game_factory(), name=f"one-{i}").run(), workers)
        return client.get_parameters(session, game.players()).flat


def play_sharded(addresses, game_factory, workers, **options):
    game = game_factory()
    plan = gameopt.ShardPlan(game.players(), len(addresses))
    with gameopt.ShardedClient(addresses) as client:
        ids = client.create_session(gameopt.build_session_config(
            game, workers=workers, **options, float64=True), plan)
        play_threads(lambda i: gameopt.ShardedWorker(
            addresses, ids, game_factory(), name=f"sharded-{i}").run(),
            workers)
        params = client.get_parameters(ids, plan)
        assert params.step == options["max_steps"]
        return params.flat, ids


def test_plan_slices_every_player_by_floor_bounds():
    players = [gameopt.PlayerSpec("g", [("w", (2, 3)), ("b", (2,))]),
               gameopt.PlayerSpec("d", [("w", (7,))])]
    plan = gameopt.ShardPlan(players, 3)
    assert [plan.begin(0, s) for s in range(4)] == [0, 2, 5, 8]
    assert [plan.begin(1, s) for s in range(4)] == [0, 2, 4, 7]
    assert [l.dimension for l in plan.shard_layouts] == [4, 5, 6]
    full = np.arange(15.0)
    np.testing.assert_array_equal(plan.gather(1, full), [2, 3, 4, 10, 11])
    rebuilt = np.zeros(15)
    for s in range(3):
        plan.scatter(s, plan.gather(s, full), rebuilt)
    np.testing.assert_array_equal(rebuilt, full)
    with pytest.raises(gameopt.ShardingError, match="fewer than the 3"):
        gameopt.ShardPlan(gameopt.BilinearGame().players(), 3)


@pytest.mark.parametrize("options,message", [
    (dict(algorithm="sga"), "alignment"),
    (dict(algorithm="conopt", clip_global_norm=1.0), "clip_global_norm"),
    (dict(algorithm="simgd", workers=2, quorum=1), "quorum"),
    (dict(algorithm="simgd", drop_invalid_samples=True), "DROP"),
    (dict(algorithm="lola"), "cross gradients"),
    (dict(algorithm="sos"), "cross gradients"),
])
def test_unshardable_settings_are_refused_before_creation(options, message):
    game = gameopt.BilinearGame(d=3, seed=4)
    config = gameopt.build_session_config(game, **options, float64=True)
    with pytest.raises(gameopt.ShardingError, match=message):
        gameopt.shard_session_configs(
            config, gameopt.ShardPlan(game.players(), SHARDS))


def test_sga_without_alignment_is_shardable():
    game = gameopt.BilinearGame(d=3, seed=4)
    gameopt.check_shardable(gameopt.build_session_config(
        game, algorithm="sga", sga_alignment=False, float64=True))


CASES = {
    "conopt-pooled-rmsprop": dict(
        algorithm="conopt", gamma=1.0, optimizer="rmsprop",
        learning_rate=0.05),
    "conopt-unbiased": dict(algorithm="conopt", gamma=1.0,
                            estimator="unbiased", learning_rate=0.2),
    "sga-fixed-lambda": dict(algorithm="sga", sga_alignment=False,
                             lambda0=1.0, learning_rate=0.2),
    "extragradient-adam": dict(algorithm="extragradient", optimizer="adam",
                               learning_rate=0.05),
    "altgd-lookahead": dict(algorithm="altgd", lookahead_k=5,
                            learning_rate=0.1),
    "optimistic-nesterov": dict(algorithm="optimistic", optimizer="nesterov",
                                learning_rate=0.05),
    "altgd-negative-momentum": dict(algorithm="altgd", optimizer="momentum",
                                    momentum=-0.5, learning_rate=0.1),
    "optimistic-adam": dict(algorithm="optimistic_adam", optimizer="adam",
                            learning_rate=0.05),
    "extrapolation-from-the-past": dict(
        algorithm="extrapolation_from_the_past", learning_rate=0.1),
    "lead-momentum": dict(algorithm="lead", optimizer="momentum",
                          momentum=0.3, lead_alpha=0.5, learning_rate=0.1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_three_shards_end_bitwise_where_one_server_ends(case, server_binary):
    factory = lambda: gameopt.BilinearGame(d=5, seed=3)  # noqa: E731
    options = dict(CASES[case], max_steps=60, seed=5)
    with servers(server_binary, SHARDS + 1) as addresses:
        one = play_one_server(addresses[0], factory, 2, **options)
        sharded, _ = play_sharded(addresses[1:], factory, 2, **options)
    assert np.all(np.isfinite(one))
    np.testing.assert_array_equal(sharded, one)


def test_python_shards_match_the_cpp_client_sharded(server_binary,
                                                    client_binary, workdir):
    """gameopt_client play --server A,B,C and the Python ShardedWorker build
    the same shard sessions and end at the same point."""
    flags = ["--game=bilinear", "--dim=5", "--game_seed=3",
             "--algorithm=conopt", "--gamma=1", "--lr=0.2", "--workers=2",
             "--steps=80", "--seed=1"]
    factory = lambda: gameopt.BilinearGame(d=5, seed=3)  # noqa: E731
    options = dict(algorithm="conopt", gamma=1.0, lambda0=1.0,
                   learning_rate=0.2, max_steps=80, seed=1)
    with servers(server_binary, SHARDS) as addresses:
        run([client_binary, "play", "--server=" + ",".join(addresses),
             f"--out={workdir}", "--live=false", "--plots=false",
             "--keep_session", *flags])
        clients = [gameopt.Client(a) for a in addresses]
        cpp_ids = [c.list_sessions()[0].session_id for c in clients]
        py, py_ids = play_sharded(addresses, factory, 2, **options)
        for client, cpp_id, py_id in zip(clients, cpp_ids, py_ids):
            cpp_status = client.get_session(cpp_id)
            py_status = client.get_session(py_id)
            assert py_status.config == cpp_status.config
            assert cpp_status.done and py_status.done
        plan = gameopt.ShardPlan(factory().players(), SHARDS)
        with gameopt.ShardedClient(addresses) as sharded:
            cpp = sharded.get_parameters(cpp_ids, plan).flat
        for client in clients:
            client.close()
    np.testing.assert_allclose(py, cpp, rtol=0, atol=CPP_TOLERANCE)


def test_torch_mog_conopt_on_three_shards_equals_one_server(server_binary):
    """The PyTorch MoG GAN (examples/mog_gan.py), ConOpt gamma 10 with
    RMSProp, two workers: 3 shards end bitwise where one server ends."""
    torch = pytest.importorskip("torch")
    import mog_gan
    torch.set_num_threads(1)  # one summation order for torch's kernels
    factory = lambda: mog_gan.make_game(torch.float64, batch=64,  # noqa
                                        seed=1)
    options = dict(algorithm="conopt", gamma=10.0, optimizer="rmsprop",
                   learning_rate=1e-3, max_steps=15, seed=1)
    with servers(server_binary, SHARDS + 1) as addresses:
        one = play_one_server(addresses[0], factory, 2, **options)
        sharded, _ = play_sharded(addresses[1:], factory, 2, **options)
    assert not np.array_equal(one, factory().initial_parameters())
    np.testing.assert_array_equal(sharded, one)
