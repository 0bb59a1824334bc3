"""gameopt.Error: a failed call as `CODE: message`, and option checking.

Every RPC of gameopt.Client, gameopt.Worker and gameopt.GameOptimizer raises
gameopt.Error on failure: a grpc.RpcError subclass (so `except
grpc.RpcError` keeps working, and `error.code()` / `error.details()` are
grpc's) whose str() is the server's status as `CODE: message`, without
gRPC's debug dump.
"""

import difflib
from typing import Iterable, Optional

import grpc


class Error(grpc.RpcError):
    """A gameopt call failed: `code` (grpc.StatusCode) and `message`."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.status_code = code
        self.message = message

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "Error":
        if isinstance(error, Error):
            return error
        code = error.code() if hasattr(error, "code") else \
            grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(code or grpc.StatusCode.UNKNOWN, details or "")

    def code(self) -> grpc.StatusCode:  # as grpc.Call.code()
        return self.status_code

    def details(self) -> str:  # as grpc.Call.details()
        return self.message

    def __str__(self) -> str:
        return f"{self.status_code.name}: {self.message}"

    def __repr__(self) -> str:
        return f"gameopt.Error({self})"


class ErrorStub:
    """Wraps a generated stub: each call's grpc.RpcError becomes Error."""

    def __init__(self, stub):
        self._stub = stub

    def __getattr__(self, method: str):
        call = getattr(self._stub, method)

        def checked(*args, **kwargs):
            try:
                return call(*args, **kwargs)
            except Error:
                raise
            except grpc.RpcError as error:
                raise Error.from_rpc(error) from None

        return checked


def suggest(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest known name, or ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def unknown_option(what: str, name: str, known: Iterable[str],
                   hint: Optional[str] = None) -> TypeError:
    known = sorted(known)
    message = f"unknown {what} '{name}'{suggest(name, known)}"
    if hint:
        message += f" ({hint})"
    else:
        message += f" (known: {', '.join(known)})"
    return TypeError(message)


class FullShardUnsupported(RuntimeError):
    """A task with full_shard set (algorithm L_SVRHG's full-gradient
    rounds: every sample over the worker's whole data instead of a
    minibatch), which the Python workers do not compute yet."""

    def __init__(self, task):
        super().__init__(
            f"task at step {task.step}, phase {task.phase} "
            f"({task.phase_label!r}) asks for a full-shard gradient or "
            "products (algorithm l_svrhg); the Python workers compute on "
            "minibatches only: run l_svrhg sessions with the C++ worker "
            "library (a Game with DrawFullShard), or use algorithm shgd")
