"""client/python/examples/mog_gan.py end to end: it starts its own server,
creates the session, trains with its own loop in two worker processes
(gameopt.torch.GameOptimizer), reports coverage over the steps, plots."""

import re
import subprocess
import sys

from conftest import REPO
from testutil import run

EXAMPLE = REPO / "client" / "python" / "examples" / "mog_gan.py"


def test_mog_example_runs_with_two_worker_processes(server_binary, workdir):
    out = workdir / "mog"
    stdout = run([sys.executable, EXAMPLE, f"--server_binary={server_binary}",
                  "--steps=30", "--workers=2", "--batch=128",
                  "--report_every=10", f"--out={out}"], timeout=240)
    # Coverage and losses while it trains, every 10 steps.
    lines = re.findall(r"^step (\d+): modes_covered=(\d) off_mode_share="
                       r"[0-9.]+ loss/generator=[0-9.]+ "
                       r"loss/discriminator=[0-9.]+", stdout, re.MULTILINE)
    assert [int(step) for step, _ in lines] == [10, 20, 30], stdout
    curve = (out / "coverage.csv").read_text().splitlines()
    assert curve[0] == "step,modes_covered,off_mode_share"
    assert [row.split(",")[0] for row in curve[1:]] == ["10", "20", "30"]
    result = re.search(r"^RESULT .*$", stdout, re.MULTILINE)
    assert result, stdout
    fields = dict(item.split("=", 1) for item in result.group(0).split()[1:])
    assert fields["steps"] == "30"
    assert fields["workers"] == "2"
    assert 0 <= int(fields["modes_covered"]) <= 8
    assert 0.0 <= float(fields["off_mode_share"]) <= 1.0
    png = (out / "samples.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_mog_example_against_a_running_server(server, workdir):
    """--server: the user's own server; the session is left there on
    request."""
    out = workdir / "mog"
    stdout = run([sys.executable, EXAMPLE, f"--server={server.address}",
                  "--steps=5", "--workers=1", "--batch=64",
                  "--algorithm=simgd", "--optimizer=adam", "--lr=1e-3",
                  "--dtype=float64", "--report_every=0", "--keep_session",
                  f"--out={out}"], timeout=240)
    assert "RESULT game=mog-torch algorithm=simgd" in stdout
    import gameopt
    with gameopt.Client(server.address) as client:
        sessions = client.list_sessions()
    assert len(sessions) == 1 and sessions[0].done
    assert sessions[0].step == 5


def test_mog_example_refuses_an_option_the_algorithm_ignores(server,
                                                              workdir):
    """simgd has no estimator: GameOptimizer refuses it, naming it."""
    result = subprocess.run(
        [sys.executable, EXAMPLE, f"--server={server.address}", "--steps=5",
         "--algorithm=simgd", "--optimizer=sgd", "--rmsprop_preset=tf1",
         "--report_every=0", f"--out={workdir / 'mog'}"],
        capture_output=True, text=True, timeout=240)
    assert result.returncode != 0
    assert "rmsprop_preset" in result.stderr, result.stderr
