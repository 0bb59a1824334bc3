"""gameopt.LocalServer() with no binary finds gameopt_server by itself:
$GAMEOPT_SERVER, else gameopt_server on PATH, else the source checkout's
build/server/gameopt_server, else a ServerNotFoundError naming the build
command."""

import os
import shutil
import subprocess

import pytest

import gameopt
from conftest import REPO
from gameopt.local_server import ServerNotFoundError, find_server_binary

PROTO = "proto/gameopt/v1/gameopt.proto"


def answers(server) -> bool:
    with gameopt.Client(server.address) as client:
        return client.list_sessions() == []


@pytest.fixture
def bare_env(monkeypatch, workdir):
    """No $GAMEOPT_SERVER and a PATH whose only folder is empty."""
    monkeypatch.delenv("GAMEOPT_SERVER", raising=False)
    empty = workdir / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def fake_checkout(root, server_binary=None):
    """A source checkout at root: the Python package, the proto and, when
    given, build/server/gameopt_server (a link to the real one)."""
    shutil.copytree(REPO / "client" / "python" / "gameopt",
                    root / "client" / "python" / "gameopt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / PROTO).parent.mkdir(parents=True)
    shutil.copy(REPO / PROTO, root / PROTO)
    if server_binary:
        (root / "build" / "server").mkdir(parents=True)
        os.symlink(server_binary, root / "build" / "server" / "gameopt_server")
    return root


def test_uses_the_server_named_by_GAMEOPT_SERVER(bare_env, monkeypatch,
                                                 workdir, server_binary):
    # A link of its own, so that it cannot be found any other way.
    chosen = workdir / "chosen_server"
    os.symlink(server_binary, chosen)
    monkeypatch.setenv("GAMEOPT_SERVER", str(chosen))
    with gameopt.LocalServer() as server:
        assert server.binary == str(chosen)
        assert answers(server)


def test_a_GAMEOPT_SERVER_that_is_no_program_is_refused(bare_env, monkeypatch,
                                                        workdir):
    missing = workdir / "no-such-server"
    monkeypatch.setenv("GAMEOPT_SERVER", str(missing))
    with pytest.raises(ServerNotFoundError,
                       match=f"GAMEOPT_SERVER={missing} is not an executable"):
        gameopt.LocalServer()


def test_finds_gameopt_server_on_PATH(bare_env, server_binary):
    os.symlink(server_binary, bare_env / "gameopt_server")
    with gameopt.LocalServer() as server:
        assert server.binary == str(bare_env / "gameopt_server")
        assert answers(server)


def test_finds_the_build_of_its_source_checkout(bare_env, workdir,
                                                server_binary):
    # A checkout of its own, so that this repository's build/ (if any) and
    # the package's real location play no part.
    root = fake_checkout(workdir / "checkout", server_binary)
    script = ("import gameopt\n"
              "with gameopt.LocalServer() as server:\n"
              "    with gameopt.Client(server.address) as client:\n"
              "        client.list_sessions()\n"
              "    print(server.binary)\n")
    env = dict(os.environ, PYTHONPATH=str(root / "client" / "python"))
    result = subprocess.run(["/usr/bin/python3", "-c", script], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        root / "build" / "server" / "gameopt_server")


def test_without_any_server_the_error_names_the_build_command(bare_env,
                                                              workdir):
    root = fake_checkout(workdir / "checkout")
    start = root / "client" / "python" / "gameopt" / "local_server.py"
    with pytest.raises(ServerNotFoundError) as error:
        find_server_binary(start=start)
    message = str(error.value)
    assert "./server/build.sh" in message
    assert str(root / "build" / "server" / "gameopt_server") in message
    assert "apt install ./gameopt_*.deb" in message


def test_outside_a_checkout_the_error_names_the_package(bare_env, tmp_path):
    # tmp_path: outside this repository (workdir may be in its build/).
    with pytest.raises(ServerNotFoundError,
                       match=r"install the gameopt \.deb") as error:
        find_server_binary(start=tmp_path / "somewhere" / "local_server.py")
    assert "server/build.sh" not in str(error.value)


def test_a_unix_socket_address_is_reported_as_given(server_binary, tmp_path):
    address = f"unix:{tmp_path}/gameopt.sock"
    with gameopt.LocalServer(server_binary, address=address) as server:
        assert server.address == address
        assert answers(server)
