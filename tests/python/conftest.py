"""Shared fixtures of the Python worker tests.

ctest runs them with the environment of tests/python/CMakeLists.txt. By
hand, from the repository root after building into build/:

    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python

(GAMEOPT_BUILD_DIR, or GAMEOPT_SERVER_BINARY / GAMEOPT_CLIENT_BINARY /
GAMEOPT_HELPER_BINARY, point elsewhere.)"""

import os
import pathlib
import shutil
import sys
import tempfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "client" / "node"
BUILD = pathlib.Path(os.environ.get("GAMEOPT_BUILD_DIR", REPO / "build"))
sys.path.insert(0, str(REPO / "client" / "python"))
sys.path.insert(0, str(REPO / "client" / "python" / "examples"))
# Generated stubs go to the build tree unless the caller chose a folder.
os.environ.setdefault("GAMEOPT_STUBS_DIR", str(BUILD / "python_stubs"))

import gameopt  # noqa: E402
from testutil import run  # noqa: E402


def _binary(variable: str, default: pathlib.Path) -> str:
    path = os.path.abspath(os.environ.get(variable) or str(default))
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not built (set {variable})")
    return path


@pytest.fixture(scope="session")
def server_binary():
    return _binary("GAMEOPT_SERVER_BINARY",
                   BUILD / "server" / "gameopt_server")


@pytest.fixture(scope="session")
def client_binary():
    return _binary("GAMEOPT_CLIENT_BINARY",
                   BUILD / "client" / "gameopt_client")


@pytest.fixture(scope="session")
def helper_binary():
    return _binary("GAMEOPT_HELPER_BINARY",
                   BUILD / "tests" / "python" / "python_test_helper")


@pytest.fixture
def server(server_binary):
    """A fresh gameopt_server on a free 127.0.0.1 port."""
    with gameopt.LocalServer(server_binary) as local:
        yield local


@pytest.fixture
def client(server):
    with gameopt.Client(server.address) as session_client:
        yield session_client


@pytest.fixture
def workdir():
    base = os.environ.get("GAMEOPT_TEST_TMP")
    if base:
        os.makedirs(base, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as path:
        yield pathlib.Path(path)


@pytest.fixture(scope="session")
def node():
    """node, with client/node's packages installed (npm ci when missing)."""
    node_binary = shutil.which("node")
    if node_binary is None:
        pytest.fail("node is not installed (apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        run(["npm", "ci", "--no-audit", "--no-fund"], timeout=300,
            cwd=NODE_DIR)
    return node_binary
