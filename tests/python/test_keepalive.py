"""Liveness from the Python side: a worker that holds a task longer than the
session's worker lease sends Heartbeat and stays active; one that stops
heartbeating (its process died) is shown as dropped within seconds."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import torch

import gameopt
from gameopt.games import BilinearGame

LEASE = 1.0  # seconds: short, so that the test sees drops quickly
SLOW = 3.0   # seconds a slow step takes: three leases


class SlowBilinear(BilinearGame):
    """The bilinear game whose gradients take SLOW seconds."""

    def gradient(self, x, sample):
        time.sleep(SLOW)
        return super().gradient(x, sample)


def _states(client, session_id):
    return {w.name: w.state for w in client.get_session(session_id).workers}


def test_slow_worker_heartbeats_and_stays_active(client, server):
    game = SlowBilinear()
    config = gameopt.build_session_config(
        game, algorithm="simgd", learning_rate=0.1, max_steps=2,
        worker_lease_seconds=LEASE)
    session_id = client.create_session(config)
    worker = gameopt.Worker(server.address, session_id, game, name="slow")
    worker.run()
    assert worker._link.keepalive.sent >= 2  # noqa: SLF001 (test)
    status = client.get_session(session_id)
    assert status.step == 2
    # Never dropped on the way: no missed rounds, no reason recorded.
    assert [w.missed_deadlines for w in status.workers] == [0]
    assert worker.retries == 0 and worker.rejoins == 0


def test_game_optimizer_between_steps_stays_active(client, server):
    generator = torch.nn.Linear(1, 1, bias=False)
    discriminator = torch.nn.Linear(1, 1, bias=False)
    with gameopt.GameOptimizer(
            client, {"generator": generator, "discriminator": discriminator},
            algorithm="simgd", lr=0.1, worker_lease_seconds=LEASE,
            handle_signals=False) as opt:
        def closure():
            x = generator.weight.sum() * discriminator.weight.sum()
            return {"generator": x, "discriminator": -x}
        opt.step(closure)
        time.sleep(SLOW)  # the user's own loop: evaluation, logging, ...
        assert _states(client, opt.session_id) == {"rank-0": "active"}
        opt.step(closure)


def test_killed_worker_is_shown_dropped_within_seconds(client, server):
    game = SlowBilinear()
    config = gameopt.build_session_config(
        game, algorithm="simgd", learning_rate=0.1, max_steps=5,
        worker_lease_seconds=LEASE)
    session_id = client.create_session(config)
    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = {sys.path!r}
        import gameopt
        from gameopt.games import BilinearGame
        class Slow(BilinearGame):
            def gradient(self, x, sample):
                time.sleep(60)
        gameopt.Worker({server.address!r}, {session_id!r}, Slow(),
                       name="doomed").run()
    """)
    child = subprocess.Popen([sys.executable, "-c", script],
                             env=dict(os.environ))
    try:
        deadline = time.monotonic() + 30
        while _states(client, session_id).get("doomed") != "active":
            assert time.monotonic() < deadline, "the worker never joined"
            time.sleep(0.1)
        time.sleep(SLOW)  # computing: heartbeats keep it active
        assert _states(client, session_id)["doomed"] == "active"
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed = time.monotonic()
        while _states(client, session_id)["doomed"] == "active":
            assert time.monotonic() - killed < 5 * LEASE + 2, \
                "the dead worker is still shown active"
            time.sleep(0.1)
        assert _states(client, session_id)["doomed"] == "dropped"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
