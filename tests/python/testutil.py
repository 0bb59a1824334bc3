"""Helpers of the Python worker tests (fixtures are in conftest.py)."""

import subprocess
import threading

import pytest


def run(args, timeout=120, **kwargs) -> str:
    """Runs a program; fails the test with its output when it fails."""
    result = subprocess.run([str(a) for a in args], capture_output=True,
                            text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode}:"
                    f"\n{result.stdout}\n{result.stderr}")
    return result.stdout


def play_cpp(client_binary, address, outdir, *flags) -> None:
    """gameopt_client play against `address`, leaving its session there."""
    run([client_binary, "play", f"--server={address}", f"--out={outdir}",
         "--live=false", "--plots=false", "--keep_session", *flags])


def only_session(client) -> str:
    sessions = client.list_sessions()
    assert len(sessions) == 1, [s.session_id for s in sessions]
    return sessions[0].session_id


def play_threads(target, workers, timeout=300) -> None:
    """Runs target(i) for i < workers on threads; fails on any exception."""
    errors = []

    def work(i):
        try:
            target(i)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,))
               for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not errors, errors
