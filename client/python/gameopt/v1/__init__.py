"""Generated gRPC stubs of gameopt.v1 (gameopt_pb2, gameopt_pb2_grpc).

`pip install` generates them here from proto/gameopt/v1/gameopt.proto; in a
source checkout gameopt._stubs generates them into a cache folder and adds it
to this package's path. Never committed.
"""
