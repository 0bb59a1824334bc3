"""Compressed wire dtypes (BFLOAT16, FLOAT16, INT8_BLOCK) in the Python and
Node.js codecs: exact round trips, the bytes of round-to-nearest-even equal
to the C++ server's (it encodes a session's parameters) and to Node's,
stochastic rounding unbiased, and a Python worker through a compressed
wire: refused in a format the session did not ask for, converging on the
quadratic game with ConOpt's unbiased estimator over a stochastic
bfloat16 wire.
"""

import json
import shutil
import subprocess

import grpc
import numpy as np
import pytest

import gameopt
from conftest import NODE_DIR
from gameopt import wire_codec
from gameopt._stubs import pb, pb_grpc
from testutil import play_threads

DTYPES = [pb.BFLOAT16, pb.FLOAT16, pb.INT8_BLOCK]


def edge_values() -> np.ndarray:
    """float32 values with ties, subnormals and random bits, all finite and
    within float16's range (so no tensor falls back to float32)."""
    ties = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x3F801000,
                     0x3F803000, 0x33000000, 0x33C00000, 0x387FF000,
                     0x477FE000, 0x477FEFFF], dtype=np.uint32).view(np.float32)
    rng = np.random.default_rng(5)
    mags = rng.standard_normal(3000).astype(np.float32) * \
        np.float32(2.0) ** rng.integers(-30, 14, 3000).astype(np.float32)
    values = np.concatenate([ties, -ties, mags, [0.0, -0.0, 65504.0, 1e-8]])
    return values.astype(np.float32)


def test_every_finite_bfloat16_and_float16_round_trips_exactly():
    h = np.arange(0, 0x10000, dtype=np.uint32)
    for dtype in (pb.BFLOAT16, pb.FLOAT16):
        raw = h.astype("<u2").tobytes()
        values = wire_codec.decode(raw, dtype, h.size)
        finite = np.isfinite(values)
        again = wire_codec.encode(values[finite], dtype)
        assert again == h[finite].astype("<u2").tobytes()


def test_int8_blocks_of_multiples_of_the_scale_round_trip_exactly():
    s = np.float32(0.25)
    values = s * ((np.arange(700) * 37) % 255 - 127).astype(np.float32)
    values[[0, 256, 512]] = [127 * s, -127 * s, 127 * s]
    data = wire_codec.encode(values, pb.INT8_BLOCK)
    assert len(data) == 700 + 4 * 3
    assert np.array_equal(wire_codec.decode(data, pb.INT8_BLOCK, 700), values)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stochastic_rounding_is_unbiased(dtype):
    draws = 20000
    rng = np.random.default_rng(1)
    for value in (1 + 1 / 3, -0.7, 6.1e-6, 3e-8, 0.3):
        if dtype == pb.INT8_BLOCK and abs(value) < 1e-3:
            continue
        # Each value next to 1.0, which sets the int8 block's scale.
        values = np.tile(np.array([value, 1.0], dtype=np.float32), draws)
        decoded = wire_codec.decode(wire_codec.encode(values, dtype, rng),
                                    dtype, values.size)[0::2].astype(
                                        np.float64)
        assert len(np.unique(decoded)) <= 2  # the two neighbours
        target = float(np.float32(value))
        se = decoded.std() / np.sqrt(draws)
        assert abs(decoded.mean() - target) <= 4 * se + 1e-12, (
            pb.DType.Name(dtype), value, decoded.mean(), se)


def node_encode(values: np.ndarray, dtype: int) -> bytes:
    """Node's wire_codec.js encoding of `values`, nearest-even."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (apt-get install nodejs)")
    script = (
        "const c = require(process.argv[1]);"
        "const v = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(c.encode(Float64Array.from(v), process.argv[2])"
        ".toString('hex'));")
    out = subprocess.run(
        [node, "-e", script, str(NODE_DIR / "wire_codec.js"),
         pb.DType.Name(dtype)],
        input=json.dumps([float(v) for v in values]), capture_output=True,
        text=True, check=True, timeout=60)
    return bytes.fromhex(out.stdout)


def server_params(server, values: np.ndarray, dtype: int) -> bytes:
    """The bytes of `values` as a session's parameters sent in `dtype` by
    the C++ server (its encoding: nearest-even)."""
    config = pb.SessionConfig(dtype=pb.FLOAT32)
    for name, block in (("a", values), ("b", np.zeros(1, np.float32))):
        player = config.players.add(name=name)
        player.tensors.add(name="w", dtype=pb.FLOAT32, shape=[block.size],
                           data=block.astype("<f4").tobytes())
    config.wire.to_workers = dtype
    with gameopt.Client(server.address) as client:
        session_id = client.create_session(config)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GameOptimizerStub(channel)
        reply = stub.JoinSession(pb.JoinSessionRequest(session_id=session_id))
    tensor = reply.task.params.players[0].tensors[0]
    assert tensor.dtype == dtype
    return tensor.data


@pytest.mark.parametrize("dtype", DTYPES)
def test_python_node_and_cpp_write_the_same_nearest_even_bytes(dtype,
                                                                server):
    values = edge_values()
    python = wire_codec.encode(values, dtype)
    assert python == server_params(server, values, dtype)
    assert python == node_encode(values, dtype)


def quadratic_config(game, **options):
    return gameopt.build_session_config(
        game, algorithm="conopt", estimator="unbiased", gamma=0.5,
        learning_rate=0.05, workers=2, seed=3, **options)


def test_a_format_the_session_did_not_ask_for_is_refused(client, server):
    game = gameopt.QuadraticGame.from_seed([2, 2], 1)
    session_id = client.create_session(quadratic_config(
        game, max_steps=3, wire="bfloat16"))
    worker = gameopt.Worker(server.address, session_id, game,
                            wire_dtype=pb.FLOAT16, max_retries=0)
    with pytest.raises(grpc.RpcError) as error:
        worker.run()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dtype float16 is not accepted" in error.value.details()
    assert "bfloat16" in error.value.details()


def test_conopt_unbiased_converges_through_a_stochastic_bfloat16_wire(
        client, server):
    game = gameopt.QuadraticGame.from_seed([2, 2], 1)
    steps = 300
    session_id = client.create_session(quadratic_config(
        game, max_steps=steps, wire="bfloat16", wire_stochastic=True))
    workers = [gameopt.Worker(server.address, session_id, game,
                              wire_dtype=pb.BFLOAT16,
                              stochastic_rounding=True) for _ in range(2)]
    play_threads(lambda i: workers[i].run(), 2)
    x = client.get_parameters(session_id, game.players()).flat
    equilibrium = game.equilibrium()
    start = np.linalg.norm(game.initial_parameters() - equilibrium)
    # bfloat16 keeps 8 significant bits: the iterates settle within a few
    # 2^-8 relative steps of the equilibrium, far below the start.
    assert np.linalg.norm(x - equilibrium) < 0.02 * start


def test_conopt_unbiased_step_through_a_stochastic_wire_is_unbiased(
        client, server):
    """One ConOpt step, x1 = x0 - lr (xi + gamma J^T xi) with xi = J x0 + b,
    averaged over independent sessions whose only randomness is the
    stochastic rounding of gradients, probes and products on a bfloat16
    wire: the mean is x1 within 4 standard errors (x0 = 1 is exact in
    bfloat16, so the parameters travel unrounded)."""
    game = gameopt.QuadraticGame.from_seed([2, 2], 1)
    lr, gamma, runs = 0.05, 0.5, 120
    x0 = game.initial_parameters()
    xi = game.J @ x0 + game.b
    expected = x0 - lr * (xi + gamma * game.J.T @ xi)
    finals = []
    for _ in range(runs):
        session_id = client.create_session(quadratic_config(
            game, max_steps=1, wire="bfloat16", wire_stochastic=True,
            float64=True))
        workers = [gameopt.Worker(server.address, session_id, game,
                                  wire_dtype=pb.BFLOAT16,
                                  stochastic_rounding=True)
                   for _ in range(2)]
        play_threads(lambda i: workers[i].run(), 2)
        finals.append(client.get_parameters(session_id, game.players()).flat)
        client.delete_session(session_id)
    finals = np.array(finals)
    se = finals.std(axis=0) / np.sqrt(runs)
    assert (se > 0).all()  # the rounding is random
    assert (np.abs(finals.mean(axis=0) - expected) <= 4 * se).all(), (
        finals.mean(axis=0) - expected, se)
    # Each run is off the exact step by its rounding; only the mean is not.
    assert np.abs(finals - expected).max() > 0
