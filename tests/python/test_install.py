"""The package installs offline into a fresh virtual environment whose
grpcio, protobuf and numpy come from Debian (client/python/README.md's
commands), with the stubs generated at build time, and works from there."""

import os
import shutil
import subprocess

import pytest

from conftest import REPO

PACKAGE = REPO / "client" / "python"


def pip_env():
    """No package index at all: the install must not need the network."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "GAMEOPT_STUBS"))}
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing written to the sources
    return env


@pytest.fixture(autouse=True)
def clean_pip_scratch():
    """pip builds in place (client/python/build, gameopt.egg-info, both
    git-ignored): remove what this test created."""
    scratch = [PACKAGE / "build", PACKAGE / "gameopt.egg-info"]
    existed = [path.exists() for path in scratch]
    yield
    for path, was_there in zip(scratch, existed):
        if not was_there:
            shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("pip_flags", [
    ["--no-index", "--no-build-isolation"],  # client/python/README's command
    [],                                      # plain pip install
])
def test_install_into_a_venv_offline(pip_flags, workdir, server_binary):
    venv = workdir / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv",
                    "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    # pip builds in client/python/build (git-ignored); one build at a time.
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", *pip_flags, str(PACKAGE)],
        capture_output=True, text=True, timeout=180, env=pip_env())
    assert install.returncode == 0, install.stdout + install.stderr

    script = f"""
import gameopt, gameopt.v1.gameopt_pb2 as pb, sys
assert gameopt.__file__.startswith({str(venv)!r}), gameopt.__file__
assert pb.__file__.startswith({str(venv)!r}), pb.__file__
with gameopt.LocalServer({server_binary!r}) as server:
    client = gameopt.Client(server.address)
    game = gameopt.BilinearGame()
    sid = client.create_session(gameopt.build_session_config(
        game, algorithm="conopt", gamma=1.0, learning_rate=0.2, max_steps=50))
    gameopt.Worker(server.address, sid, game).run()
    x = client.get_parameters(sid, game.players()).flat
    assert abs(x).max() < 1e-2, x
print("ok")
"""
    used = subprocess.run([python, "-c", script], capture_output=True,
                          text=True, timeout=120, cwd=workdir, env=pip_env())
    assert used.stdout.strip() == "ok", used.stdout + used.stderr
