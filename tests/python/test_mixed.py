"""One C++, one Python and one Node.js worker in the same rounds of a
quadratic game (workers_per_round 3) reach the all-C++ result.

All three compute xi = J x + b with the J and b of the C++ QuadraticGame
(python_test_helper dump-quadratic writes them with 17 digits: exact).
"""

import json
import subprocess

import numpy as np
import pytest

import gameopt
from conftest import NODE_DIR
from testutil import only_session, play_cpp, run

# The workers' sums J x + b differ only in summation order (Eigen, numpy,
# a JavaScript loop): a few ulps per step on values of order 1.
TOLERANCE = 1e-12
STEPS = 100


@pytest.mark.parametrize("algorithm", ["conopt", "sga"])
def test_cpp_python_and_node_workers_share_rounds(
        algorithm, node, server, client, client_binary, helper_binary,
        workdir):
    dump = workdir / "quadratic.json"
    run([helper_binary, "dump-quadratic", "--game=quadratic",
         "--players=2,2", "--game_seed=1", f"--out={dump}"])
    data = json.loads(dump.read_text())
    game = gameopt.QuadraticGame(data["dims"], data["J"], data["b"])

    play_cpp(client_binary, server.address, workdir, "--game=quadratic",
             "--players=2,2", "--game_seed=1", f"--algorithm={algorithm}",
             "--workers=3", f"--steps={STEPS}")
    cpp_session = only_session(client)

    config = gameopt.build_session_config(
        game, algorithm=algorithm, gamma=1.0, lambda0=1.0,
        learning_rate=0.05, workers=3, max_steps=STEPS, seed=1, float64=True)
    session_id = client.create_session(config)
    others = [
        subprocess.Popen(
            [helper_binary, "worker", f"--server={server.address}",
             f"--session={session_id}", "--game=quadratic", "--players=2,2",
             "--game_seed=1", "--name=cpp"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen(
            [node, str(NODE_DIR / "worker.js"), server.address, session_id,
             "node", "--quadratic", str(dump)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
    ]
    worker = gameopt.Worker(server.address, session_id, game, name="python")
    try:
        worker.run()
    finally:
        outputs = [p.communicate(timeout=60)[0] for p in others]
    for process, output in zip(others, outputs):
        assert process.returncode == 0, output

    status = client.get_session(session_id)
    assert status.config == client.get_session(cpp_session).config
    assert sorted(w.name for w in status.workers) == ["cpp", "node", "python"]
    players = game.players()
    mixed = client.get_parameters(session_id, players)
    cpp = client.get_parameters(cpp_session, players)
    assert mixed.step == cpp.step == STEPS
    print(f"{algorithm}: max |mixed - cpp| = "
          f"{np.abs(mixed.flat - cpp.flat).max():.3g}")
    np.testing.assert_allclose(mixed.flat, cpp.flat, rtol=0, atol=TOLERANCE)
    # And the game moved: x* is far from the start.
    assert np.linalg.norm(mixed.flat - np.ones(4)) > 0.1
