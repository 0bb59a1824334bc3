"""Runs a gameopt_server binary as a child process (tests, examples,
notebooks).

    with LocalServer() as server:
        client = Client(server.address)

Without a binary, LocalServer finds one (find_server_binary): the
$GAMEOPT_SERVER variable, else `gameopt_server` on PATH (the Debian package
installs /usr/bin/gameopt_server), else build/server/gameopt_server of the
source checkout this package lives in (./server/build.sh builds it).

Binds 127.0.0.1:0 by default (the server picks a free port and prints it in
"gameopt_server listening on HOST:PORT"); stop() sends SIGTERM.
"""

import os
import pathlib
import shutil
import subprocess
import threading
from typing import List, Optional

SERVER_ENV = "GAMEOPT_SERVER"
BUILD_COMMAND = "./server/build.sh"


class ServerNotFoundError(FileNotFoundError):
    """No gameopt_server binary was found; the message says how to get one."""


def _executable(path) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _checkout_binary(start) -> Optional[pathlib.Path]:
    """build/server/gameopt_server of the checkout holding `start`: the
    first parent with proto/gameopt/v1/gameopt.proto (the checkout's root)."""
    for parent in pathlib.Path(start).resolve().parents:
        if (parent / "proto" / "gameopt" / "v1" / "gameopt.proto").is_file():
            return parent / "build" / "server" / "gameopt_server"
    return None


def find_server_binary(start=None) -> str:
    """The gameopt_server to run: $GAMEOPT_SERVER (which must then be an
    executable file), else `gameopt_server` on PATH, else the source
    checkout's build/server/gameopt_server (`start`: a path inside the
    checkout, default this file). ServerNotFoundError, naming what was
    looked at and the build command, when there is none."""
    chosen = os.environ.get(SERVER_ENV)
    if chosen:
        if not _executable(chosen):
            raise ServerNotFoundError(
                f"${SERVER_ENV}={chosen} is not an executable file; point it "
                f"at a gameopt_server binary or unset it")
        return os.path.abspath(chosen)
    on_path = shutil.which("gameopt_server")
    if on_path:
        return on_path
    checkout = _checkout_binary(start or __file__)
    if checkout is not None and _executable(checkout):
        return str(checkout)
    looked = [f"${SERVER_ENV} (unset)", "gameopt_server on PATH"]
    hint = ("install the gameopt .deb (apt install ./gameopt_*.deb; "
            "docker/deb/build_deb.sh makes it)")
    if checkout is not None:
        looked.append(str(checkout))
        hint = (f"build it with `{BUILD_COMMAND}` in {checkout.parents[2]}, "
                f"or {hint}")
    raise ServerNotFoundError(
        f"no gameopt_server found (looked at {', '.join(looked)}): {hint}, "
        f"or pass LocalServer(binary) or set ${SERVER_ENV}")


class LocalServer:
    """A gameopt_server child process. `binary`: the program to run (None:
    find_server_binary()); `address` its --address; `extra_args` more
    flags. Raises ServerNotFoundError when no binary is found and
    RuntimeError (with the server's last output) when it does not start
    within `start_timeout` seconds. `address` then holds HOST:PORT,
    `binary` the program and `log` the server's output lines."""

    def __init__(self, binary: Optional[str] = None,
                 address: str = "127.0.0.1:0",
                 max_message_mb: int = 1024, quiet: bool = True,
                 extra_args: Optional[List[str]] = None,
                 start_timeout: float = 30.0):
        self.binary = os.fspath(binary) if binary else find_server_binary()
        args = [self.binary, f"--address={address}",
                f"--max_message_mb={max_message_mb}"]
        if quiet:
            args.append("--quiet")
        self._process = subprocess.Popen(
            args + list(extra_args or []), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.address = None
        self.log: List[str] = []
        ready = threading.Event()

        def read():  # the server's output, kept for diagnostics
            for line in self._process.stdout:
                self.log.append(line.rstrip("\n"))
                if self.address is None and "listening on" in line:
                    self.address = line.split()[-1]
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(start_timeout) or self.address is None:
            self.stop()
            raise RuntimeError(f"{self.binary} did not start: "
                               + "\n".join(self.log[-20:]))

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._reader.join(timeout=1)
        return self._process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
