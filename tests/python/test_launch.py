"""GameOptimizer under torchrun (RANK / WORLD_SIZE, no process group) and
leaving the session on exit, SIGTERM and SIGINT."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np

import gameopt

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]


def environment(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "client" / "python"), str(HERE),
         env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def wait_for(predicate, timeout=60.0):
    give_up = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < give_up, "timed out"
        time.sleep(0.1)


def test_torchrun_two_ranks_share_one_session(server, client, workdir):
    # --redirects/--tee: Debian's torch 1.13 on Python 3.11 fails on the
    # default "0" (IntFlag iteration skips Std.NONE); any non-zero works.
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc_per_node=2", "--redirects", "2", "--tee", "1",
         str(HERE / "torchrun_gan.py"), "--server", server.address,
         "--out", str(workdir), "--steps", "5"],
        env=environment(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = [json.loads((workdir / f"rank-{r}.json").read_text())
             for r in range(2)]
    assert [(r["rank"], r["world"], r["name"]) for r in ranks] == \
        [(0, 2, "rank-0"), (1, 2, "rank-1")]
    assert ranks[0]["session"] == ranks[1]["session"]
    assert ranks[0]["session"].startswith("torchrun-")
    # DistributedSampler without a process group: disjoint halves.
    assert sorted(ranks[0]["shard"] + ranks[1]["shard"]) == list(range(8))
    status = client.get_session(ranks[0]["session"])
    assert status.step == 5 and status.config.workers_per_round == 2
    assert sorted((w.name, w.state) for w in status.workers) == \
        [("rank-0", "left"), ("rank-1", "left")]
    # Both ranks end with the session's parameters (rank 1 started elsewhere).
    params = client.get_parameters(ranks[0]["session"]).tensors()
    served = np.concatenate([v.reshape(-1) for p in params.values()
                             for v in p.values()])
    for r in ranks:
        np.testing.assert_array_equal(
            np.concatenate([np.asarray(v, dtype=np.float32)
                            for v in r["params"]]), served)


WORKER = """
import sys, torch, gameopt
from gameopt_games_torch import Feed, make_batches, make_players
g, d = make_players()
opt = gameopt.GameOptimizer(sys.argv[1], {"generator": g, "discriminator": d},
                            session=sys.argv[2], create=False, workers=2,
                            worker_name="victim")
feed = Feed(g, d, make_batches(2))
if sys.argv[3] == "exit":
    opt.step(feed)           # one step (workers=1), then exit without close()
else:
    print("stepping", flush=True)
    opt.step(feed)           # blocks: the round waits for a second worker
"""


def create(client, workers):
    g, d = __import__("gameopt_games_torch").make_players()
    specs = [gameopt.PlayerSpec(name, [
        gameopt.TensorSpec(n, tuple(p.shape))
        for n, p in m.named_parameters()])
        for name, m in (("generator", g), ("discriminator", d))]
    initial = np.concatenate([p.detach().reshape(-1).double().numpy()
                              for m in (g, d) for p in m.parameters()])
    return client.create_session(gameopt.build_session_config(
        specs, initial, workers=workers, phase_deadline_seconds=-1,
        max_steps=4))


def start(server, session_id, mode):
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, server.address, session_id, mode],
        env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


def states(client, session_id):
    return [(w.name, w.state) for w in client.get_session(session_id).workers]


def test_a_worker_leaves_when_the_script_ends(server, client):
    session_id = create(client, workers=1)
    process = start(server, session_id, "exit")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert states(client, session_id) == [("victim", "left")]
    assert client.get_session(session_id).step == 1


def test_a_worker_leaves_on_sigterm_and_sigint(server, client):
    for sig, code in ((signal.SIGTERM, 128 + signal.SIGTERM),
                      (signal.SIGINT, -signal.SIGINT)):
        session_id = create(client, workers=2)
        process = start(server, session_id, "block")
        assert process.stdout.readline().strip() == "stepping"
        wait_for(lambda: client.get_session(session_id).submitted == 1)
        process.send_signal(sig)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == code, output
        assert states(client, session_id) == [("victim", "left")], output


RESTARTED = """
import os, sys, gameopt
from gameopt_games_torch import Feed, make_batches, make_players
g, d = make_players()
opt = gameopt.GameOptimizer(sys.argv[1], {"generator": g, "discriminator": d},
                            session=sys.argv[2], rank=1, world_size=2,
                            workers=1)
feed = Feed(g, d, make_batches(2))
while not opt.done:
    opt.step(feed)
    print("worker", opt.worker_id, "step", opt.steps_done, flush=True)
    if sys.argv[3] == "die" and opt.steps_done == 2:
        os._exit(3)         # killed: no LeaveSession
opt.close()
"""


def test_a_restarted_rank_rejoins_by_name(server, client):
    session_id = create(client, workers=1)

    def play(mode):
        result = subprocess.run(
            [sys.executable, "-c", RESTARTED, server.address, session_id,
             mode], env=environment(), capture_output=True, text=True,
            timeout=120)
        return result.returncode, result.stdout + result.stderr

    code, first = play("die")
    assert code == 3, first
    code, second = play("finish")
    assert code == 0, second
    ids = {line.split()[1] for line in (first + second).splitlines()
           if line.startswith("worker ")}
    assert len(ids) == 1, first + second  # the same worker id throughout
    assert states(client, session_id) == [("rank-1", "left")]
