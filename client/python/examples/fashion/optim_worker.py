#!/usr/bin/env python3
"""One torchrun rank of the Fashion-MNIST GAN with the torch.optim-shaped
API (gameopt.GameOptimizer): the user's own loop, opt.step(closure).

    python3 -m torch.distributed.run --nproc_per_node=K \\
        client/python/examples/fashion/optim_worker.py --server HOST:PORT \\
        --session fashion-1 --algorithm conopt --optimizer rmsprop \\
        --lr 5e-4 --gamma 10 --steps 300

Rank 0 creates the session `--session` (its initial parameters are rank
0's networks, seeded --seed) and every rank trains on its shard of the
training images (shard RANK of WORLD_SIZE), drawing its own minibatches.
The networks are float32, so the session is too (GameOptimizer's default
for float32 modules); run.py's Worker path keeps float64 sessions.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", ".."))
import gameopt  # noqa: E402
from gameopt.fashion_gan import GanConfig, GanData  # noqa: E402
from gameopt.fashion_models import gan_losses, make_gan  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--dataset", default="stacked")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--algorithm", default="simgd")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--gamma", type=float, default=10.0)
    parser.add_argument("--estimator", default="pooled")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data_limit", type=int, default=0)
    parser.add_argument("--device", default="cpu",
                        help="torch device of the networks and minibatches "
                             "(e.g. cuda; GameOptimizer copies through the "
                             "CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    gameopt.tune_malloc()  # the gpu size's messages are 10s of MB a step

    config = GanConfig(dataset=args.dataset, size=args.size,
                       batch=args.batch, algorithm=args.algorithm,
                       optimizer=args.optimizer, lr=args.lr,
                       gamma=args.gamma, estimator=args.estimator,
                       workers=int(os.environ.get("WORLD_SIZE", 1)),
                       seed=args.seed)
    g, d = make_gan(args.size, config.channels, args.seed)
    g, d = g.to(args.device), d.to(args.device)
    options = dict(estimator=args.estimator, max_steps=args.steps,
                   seed=args.seed, phase_deadline_seconds=600.0,
                   samples_per_worker=config.session_options(
                       args.steps).samples_per_worker)
    if args.algorithm == "conopt":
        options["gamma"] = args.gamma
    start = time.time()
    with gameopt.GameOptimizer(
            args.server, {"generator": g, "discriminator": d},
            algorithm=args.algorithm, optimizer=args.optimizer, lr=args.lr,
            session=args.session, **options) as opt:
        rank, world = opt.shard
        data = GanData.load(args.dataset, rank, world,
                            limit=args.data_limit or None)
        rng = np.random.default_rng([args.seed, rank])

        def closure():
            z, real = data.minibatch(int(rng.integers(2 ** 62)), args.batch,
                                     config.z_dim)
            return gan_losses(g, d, z.to(args.device), real.to(args.device))

        while not opt.done:
            opt.step(closure)
        steps = opt.steps_done
    print(f"RESULT fashion_optim_worker rank={rank} world={world} "
          f"shard_images={len(data.images)} steps={steps} "
          f"seconds={time.time() - start:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
