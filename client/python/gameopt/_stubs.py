"""Loads the generated gRPC stubs of gameopt.v1 (pb, pb_grpc).

An installed package carries them (setup.py generates them at build time). In
a source checkout (PYTHONPATH=client/python) they are generated on first use
with protoc and grpc_python_plugin from proto/gameopt/v1/gameopt.proto into
$GAMEOPT_STUBS_DIR (default ~/.cache/gameopt/stubs), one folder per proto
version, and that folder joins gameopt.v1's path. Generated code never lands
in the source tree.
"""

import hashlib
import importlib
import os
import pathlib
import shutil
import tempfile

from gameopt import _protoc

_MODULES = ("gameopt.v1.gameopt_pb2", "gameopt.v1.gameopt_pb2_grpc")


def _generated_dir() -> pathlib.Path:
    """Generates the stubs once per proto version (atomic rename, so
    concurrent processes are safe) and returns the folder of the modules."""
    try:
        root = _protoc.find_proto_root()
    except FileNotFoundError as error:
        raise ImportError(f"gameopt: the generated stubs are missing and "
                          f"{error}") from None
    proto = root / _protoc.PROTO_RELATIVE
    digest = hashlib.sha256(proto.read_bytes()).hexdigest()[:16]
    base = pathlib.Path(os.environ.get("GAMEOPT_STUBS_DIR") or
                        pathlib.Path.home() / ".cache" / "gameopt" / "stubs")
    final = base / digest
    if not (final / "gameopt" / "v1" / "gameopt_pb2_grpc.py").is_file():
        base.mkdir(parents=True, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=".gen-", dir=base)
        try:
            _protoc.generate(root, scratch)
        except RuntimeError as error:
            shutil.rmtree(scratch, ignore_errors=True)
            raise ImportError(f"gameopt: {error}") from None
        try:
            os.rename(scratch, final)
        except OSError:  # another process got there first
            shutil.rmtree(scratch, ignore_errors=True)
    return final / "gameopt" / "v1"


def _import():
    return tuple(importlib.import_module(name) for name in _MODULES)


def load():
    """Returns the modules (gameopt_pb2, gameopt_pb2_grpc)."""
    try:
        return _import()
    except ModuleNotFoundError as error:
        if error.name not in _MODULES:
            raise
    import gameopt.v1
    gameopt.v1.__path__.append(str(_generated_dir()))
    return _import()


pb, pb_grpc = load()
