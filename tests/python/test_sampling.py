"""gameopt.sampling and the Python game ports against the C++ games."""

import json

import numpy as np

import gameopt
from gameopt.sampling import RandomStream, slot_seed
from testutil import run


def test_random_stream_matches_cpp_bit_for_bit(helper_binary):
    for seed in (0, 7, 2 ** 64 - 1):
        lines = run([helper_binary, "random", f"--seed={seed}",
                     "--count=20"]).split()
        draws = [float(v) for v in lines[:40]]
        slots = [int(v) for v in lines[40:]]
        random = RandomStream(seed)
        mine = []
        for _ in range(20):
            mine += [random.uniform(), random.gaussian()]
        assert mine == draws  # exact: same engine, same libm
        assert [slot_seed(seed, k) for k in range(20)] == slots


def test_quadratic_from_seed_matches_cpp_dump(helper_binary, workdir):
    for dims, seed in (([2, 2], 1), ([3, 1, 2], 5)):
        path = workdir / "quadratic.json"
        run([helper_binary, "dump-quadratic", "--game=quadratic",
             f"--players={','.join(map(str, dims))}", f"--game_seed={seed}",
             f"--out={path}"])
        dumped = json.loads(path.read_text())
        game = gameopt.QuadraticGame.from_seed(dims, seed)
        assert dumped["dims"] == dims
        # Same draws; the only rounding is G G^T / d (Eigen vs numpy).
        np.testing.assert_allclose(game.J, dumped["J"], rtol=0, atol=1e-15)
        np.testing.assert_array_equal(game.b, dumped["b"])


def test_layout_round_trip_float32_and_float64():
    players = [gameopt.PlayerSpec("g", [("w", (2, 3)), ("b", (2,))]),
               gameopt.PlayerSpec("d", [("s", ())])]
    layout = gameopt.FlatLayout(players)
    x = np.arange(layout.dimension, dtype=np.float64) / 3
    for dtype, exact in ((gameopt.pb.FLOAT64, x),
                         (gameopt.pb.FLOAT32, x.astype(np.float32))):
        vector = gameopt.encode_vector(x, layout, None, dtype)
        assert vector.players[0].tensors[0].shape == [2, 3]
        np.testing.assert_array_equal(gameopt.decode_vector(vector, layout),
                                      exact)
    only_d = gameopt.encode_vector(x, layout, ["d"])
    assert [p.player for p in only_d.players] == ["d"]
    np.testing.assert_array_equal(layout.join(layout.split(x)), x)
