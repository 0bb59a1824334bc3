"""The Python worker survives a restart of gameopt_server --state_dir.

The server is stopped (SIGTERM: it checkpoints every session) while two
Python workers are in the middle of a session, and started again on the
same address and state_dir. The workers only retry (UNAVAILABLE, CANCELLED)
and rejoin (FAILED_PRECONDITION) on their own; the session ends with the
parameters, byte for byte, of the same session played without a restart.
"""

import threading

import pytest

import gameopt

STEPS = 60
WORKERS = 2
CONFIG = dict(algorithm="conopt", optimizer="rmsprop", learning_rate=0.05,
              max_steps=STEPS, seed=2)


def make_game():
    return gameopt.BilinearGame(d=3, seed=4)


def play(address, session_id, errors, on_progress=None):
    """Runs WORKERS Python workers to DONE; exceptions land in `errors`."""
    def work(i):
        try:
            gameopt.Worker(address, session_id, make_game(), name=f"py-{i}",
                           on_progress=on_progress).run()
        except Exception as error:  # reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,))
               for i in range(WORKERS)]
    for t in threads:
        t.start()
    return threads


def params_bytes(client, session_id):
    params = client.get_parameters(session_id)
    return params.step, params.vector.SerializeToString()


# Stopped in the gradient round of step STEPS / 2, or, with the unbiased
# estimator, in its products round: those probes were sent and let go, so
# the server checkpoints the step's start and replays its gradient round
# (server/README.md, "Probes in the samples' bytes").
@pytest.mark.parametrize("estimator,phase", [("pooled", 0), ("unbiased", 1)])
def test_workers_finish_across_a_restart(server_binary, workdir, estimator,
                                         phase):
    state = [f"--state_dir={workdir / 'state'}"]
    config = gameopt.build_session_config(make_game(), workers=WORKERS,
                                          **CONFIG, float64=True,
                                          estimator=estimator)
    first = gameopt.LocalServer(server_binary, extra_args=state)
    address = first.address
    with gameopt.Client(address) as client:
        session = client.create_session(config)
    # A worker holds its task of step STEPS / 2 until the server is back.
    halfway, restarted = threading.Event(), threading.Event()

    def progress(p):
        if (p.step == STEPS // 2 and p.phase == phase
                and not halfway.is_set()):
            halfway.set()
            restarted.wait(60)

    errors = []
    threads = play(address, session, errors, progress)
    try:
        assert halfway.wait(60)
        with gameopt.Client(address) as client:
            assert client.get_session(session).step == STEPS // 2
    finally:
        assert first.stop() == 0
    with gameopt.LocalServer(server_binary, address=address,
                             extra_args=state) as second:
        restarted.set()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        with gameopt.Client(second.address) as client:
            restarted = params_bytes(client, session)
            reference = client.create_session(config)
            for t in play(second.address, reference, errors):
                t.join(timeout=120)
            assert not errors, errors
            assert restarted[0] == STEPS
            assert restarted == params_bytes(client, reference)
