"""One worker of the Fashion-MNIST GAN: joins a session and plays it until
DONE, on its own shard of the training set.

    # K workers on this machine (torchrun sets RANK and WORLD_SIZE):
    python3 -m torch.distributed.run --standalone --nproc_per_node=K \\
        -m gameopt.fashion_worker --server HOST:PORT --session_id ID
    # one pod of a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is set):
    python3 -m gameopt.fashion_worker --server HOST:PORT \\
        --session_name fashion-gan --num_shards K

With --create it plays nothing: it creates the session --session_name
(algorithm, optimizer, lr, gamma, estimator, workers, steps, seed from its
flags) unless an unfinished one of that name exists, prints its id and
exits (the Kubernetes create Job: a retried pod reuses the session).

The worker's index (its name "fashion-<index>" and its data shard) is
--index, else $JOB_COMPLETION_INDEX (Kubernetes Indexed Job), else $RANK
(torchrun), else 0; the number of shards --num_shards, else $WORLD_SIZE,
else 1. --dataset, --size and --batch must match the session's game (the
driver's); the parameters themselves come from the server.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

from gameopt.fashion_gan import GanConfig, GanData, make_game
from gameopt.session import Client, build_session_config
from gameopt.worker import Worker


def _env_int(*names: str, default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            return int(value)
    return default


def create(args, channel) -> int:
    """The --create mode: one session of the flags' configuration."""
    config = GanConfig(dataset=args.dataset, size=args.size,
                       batch=args.batch, algorithm=args.algorithm,
                       optimizer=args.optimizer, lr=args.lr,
                       gamma=args.gamma, estimator=args.estimator,
                       workers=args.workers, seed=args.seed)
    empty = GanData(args.dataset, np.zeros((0, 1, 28, 28), np.float32),
                    np.zeros(0, np.int64))
    with Client(args.server, **channel) as client:
        try:
            session_id = client.find_session(args.session_name, 0.0)
            print(f"session {session_id} ('{args.session_name}') exists",
                  flush=True)
            return 0
        except LookupError:
            pass
        session_id = client.create_session(build_session_config(
            make_game(config, empty),
            options=config.session_options(args.steps, args.session_name)))
    print(f"created session {session_id} ('{args.session_name}'): "
          f"{args.algorithm} ({args.optimizer}, lr {args.lr}), "
          f"{args.workers} worker(s), {args.steps} steps", flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="HOST:PORT")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--session_id")
    which.add_argument("--session_name",
                       help="find the unfinished session of this name")
    parser.add_argument("--wait_s", type=float, default=300.0,
                        help="with --session_name: seconds to wait for it")
    parser.add_argument("--index", type=int, default=None)
    parser.add_argument("--num_shards", type=int, default=None)
    parser.add_argument("--dataset", default="stacked")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--data_limit", type=int, default=0,
                        help="use only the first N training images (tests)")
    parser.add_argument("--device", default="cpu",
                        help="torch device of the networks, e.g. cuda")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads")
    parser.add_argument("--create", action="store_true",
                        help="create the session (if missing) and exit")
    parser.add_argument("--algorithm", default="simgd")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--gamma", type=float, default=10.0)
    parser.add_argument("--estimator", default="pooled")
    parser.add_argument("--workers", type=int, default=1,
                        help="with --create: K workers per round")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--token", default=os.environ.get("GAMEOPT_TOKEN"))
    parser.add_argument("--tls_roots")
    args = parser.parse_args(argv)

    channel = dict(token=args.token, root_certificates=args.tls_roots)
    if args.create:
        if not args.session_name:
            parser.error("--create needs --session_name")
        return create(args, channel)
    index = args.index if args.index is not None else _env_int(
        "JOB_COMPLETION_INDEX", "RANK", default=0)
    shards = args.num_shards or _env_int("WORLD_SIZE", default=1)
    torch.set_num_threads(args.threads)
    config = GanConfig(dataset=args.dataset, size=args.size,
                       batch=args.batch)
    data = GanData.load(args.dataset, index, shards,
                        limit=args.data_limit or None)
    game = make_game(config, data, args.device)
    session_id = args.session_id
    if session_id is None:
        with Client(args.server, **channel) as client:
            session_id = client.find_session(args.session_name, args.wait_s)
    worker = Worker(args.server, session_id, game, name=f"fashion-{index}",
                    **channel)
    start = time.time()
    worker.run()
    print(f"RESULT fashion_worker index={index} shards={shards} "
          f"shard_images={len(data.images)} tasks={worker.tasks_done} "
          f"seconds={time.time() - start:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
