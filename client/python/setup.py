"""The gameopt Python package. Installs offline on Debian bookworm, whose
python3-grpcio, python3-protobuf and python3-numpy it uses (no
install_requires, nothing fetched); PyTorch (python3-torch) is needed only by
gameopt.torch. The gRPC stubs are generated at build time from
../../proto/gameopt/v1/gameopt.proto (or $GAMEOPT_PROTO_DIR) by protoc with
grpc_python_plugin (protobuf-compiler, protobuf-compiler-grpc) into the
build tree, never into the sources. See README.md for the install command.
"""

import importlib.util
import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


def _protoc_module():
    spec = importlib.util.spec_from_file_location(
        "gameopt_protoc", HERE / "gameopt" / "_protoc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithStubs(build_py):
    """build_py, then gameopt/v1/gameopt_pb2{,_grpc}.py into build_lib."""

    def run(self):
        super().run()
        protoc = _protoc_module()
        protoc.generate(protoc.find_proto_root(HERE), self.build_lib)


setup(
    name="gameopt",
    version="0.1.0",
    description="Python workers and session management for the gameopt "
                "game-optimization service (gameopt.v1)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=["gameopt", "gameopt.v1"],
    python_requires=">=3.9",
    # Deliberately empty: grpcio, protobuf and numpy (and torch for
    # gameopt.torch) come from the system (Debian packages), so pip never
    # needs the network.
    install_requires=[],
    cmdclass={"build_py": BuildPyWithStubs},
)
