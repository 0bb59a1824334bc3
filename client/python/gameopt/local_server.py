"""Runs a gameopt_server binary as a child process (tests, examples).

    with LocalServer("build/server/gameopt_server") as server:
        client = Client(server.address)

Binds 127.0.0.1:0 by default (the server picks a free port and prints it in
"gameopt_server listening on HOST:PORT"); stop() sends SIGTERM.
"""

import subprocess
import threading
from typing import List, Optional


class LocalServer:
    def __init__(self, binary: str, address: str = "127.0.0.1:0",
                 max_message_mb: int = 1024, quiet: bool = True,
                 extra_args: Optional[List[str]] = None,
                 start_timeout: float = 30.0):
        args = [binary, f"--address={address}",
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
            raise RuntimeError("gameopt_server did not start: "
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
