"""gameopt: Python workers and session management for the gameopt service.

    import gameopt
    with gameopt.Client("127.0.0.1:50051") as client:
        game = gameopt.BilinearGame()
        config = gameopt.build_session_config(
            game, algorithm="conopt", gamma=1.0, learning_rate=0.2,
            max_steps=100)
        session_id = client.create_session(config)
        gameopt.Worker("127.0.0.1:50051", session_id, game).run()
        x = client.get_parameters(session_id, game.players()).flat

gameopt.GameOptimizer (gameopt.optim, needs torch; also
gameopt.torch.GameOptimizer) is the torch.optim-shaped API: the user's loop
calls opt.step(closure). gameopt.torch.TorchGame wraps PyTorch modules as a
seed-driven Game for gameopt.Worker. Failed calls raise gameopt.Error.
gameopt.sharding (ShardPlan, ShardedClient, ShardedWorker) shards one
experiment's parameters over several servers.
"""

from gameopt._stubs import pb, pb_grpc
from gameopt.errors import Error
from gameopt.games import BilinearGame, DiracGan, Game, QuadraticGame
from gameopt.local_server import LocalServer
from gameopt.malloc_tuning import tune_malloc
from gameopt.sampling import RandomStream, slot_seed
from gameopt.schedules import CosineAnnealingLR, ExponentialLR, LinearLR, \
    MultiStepLR, StepLR
from gameopt.session import Client, Parameters, SessionOptions, \
    build_session_config, make_channel
from gameopt.sharding import ShardedClient, ShardedParameters, \
    ShardedWorker, ShardingError, ShardPlan, check_shardable, \
    shard_session_configs
from gameopt.tensors import FlatLayout, LayoutError, PlayerSpec, TensorSpec, \
    decode_vector, encode_vector
from gameopt.worker import TaskLink, Worker, WorkerProgress, WorkerStopped

__version__ = "0.1.0"

__all__ = [
    "pb", "pb_grpc", "BilinearGame", "DiracGan", "Game", "QuadraticGame",
    "LocalServer", "RandomStream", "slot_seed", "Client", "Parameters",
    "SessionOptions", "build_session_config", "make_channel", "FlatLayout",
    "LayoutError", "PlayerSpec", "TensorSpec", "decode_vector",
    "encode_vector", "Worker", "WorkerProgress", "WorkerStopped",
    "TaskLink", "ShardedClient", "ShardedParameters", "ShardedWorker",
    "ShardingError", "ShardPlan", "check_shardable", "shard_session_configs",
    "Error", "GameOptimizer", "SessionDone", "StepLR", "MultiStepLR",
    "ExponentialLR", "CosineAnnealingLR", "LinearLR", "tune_malloc",
]


def __getattr__(name):  # torch is imported only when these are used
    if name in ("GameOptimizer", "SessionDone"):
        import gameopt.optim
        return getattr(gameopt.optim, name)
    raise AttributeError(f"module 'gameopt' has no attribute '{name}'")
