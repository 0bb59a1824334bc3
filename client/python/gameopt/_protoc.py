"""Runs protoc with grpc_python_plugin on gameopt.proto (no other imports,
so setup.py can load this file on its own)."""

import os
import pathlib
import shutil
import subprocess

PROTO_RELATIVE = "gameopt/v1/gameopt.proto"


def find_proto_root(start=None) -> pathlib.Path:
    """The folder holding gameopt/v1/gameopt.proto: $GAMEOPT_PROTO_DIR, or
    proto/ of the checkout `start` (default: this file) lives in."""
    candidates = []
    if os.environ.get("GAMEOPT_PROTO_DIR"):
        candidates.append(pathlib.Path(os.environ["GAMEOPT_PROTO_DIR"]))
    here = pathlib.Path(start or __file__).resolve()
    candidates += [parent / "proto" for parent in here.parents]
    for root in candidates:
        if (root / PROTO_RELATIVE).is_file():
            return root
    raise FileNotFoundError(
        "gameopt.proto not found: build from a gameopt checkout or set "
        "GAMEOPT_PROTO_DIR to the folder holding gameopt/v1/gameopt.proto")


def generate(proto_root, out_dir) -> None:
    """Writes out_dir/gameopt/v1/gameopt_pb2.py and gameopt_pb2_grpc.py.
    RuntimeError when protoc or the plugin is missing or fails."""
    protoc = shutil.which("protoc")
    plugin = (os.environ.get("GAMEOPT_GRPC_PYTHON_PLUGIN")
              or shutil.which("grpc_python_plugin")
              or "/usr/bin/grpc_python_plugin")
    if protoc is None or not os.path.exists(plugin):
        raise RuntimeError(
            "generating the gameopt stubs needs protoc and grpc_python_plugin "
            "(Debian: apt-get install protobuf-compiler "
            "protobuf-compiler-grpc)")
    command = [protoc, f"--plugin=protoc-gen-grpc={plugin}",
               f"--python_out={out_dir}", f"--grpc_out={out_dir}",
               f"-I{proto_root}",
               str(pathlib.Path(proto_root) / PROTO_RELATIVE)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed: {result.stderr.strip()}")
