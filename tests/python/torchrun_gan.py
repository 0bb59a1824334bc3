"""One torchrun rank of test_torchrun.py: the small GAN with GameOptimizer.

    python3 -m torch.distributed.run --standalone --nproc_per_node=2 \\
        --redirects 2 --tee 1 torchrun_gan.py --server HOST:PORT --out DIR

Each rank starts from its own random init (the session takes rank 0's),
trains on its shard of a fixed data set, and writes what it saw to
DIR/rank-<r>.json. --hang_at N: block forever at step N (a killed rank)."""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gameopt  # noqa: E402  (PYTHONPATH=client/python)
from gameopt_games_torch import Feed, make_batches, make_players  # noqa


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--hang_at", type=int, default=-1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    g, d = make_players(seed=100 + rank)
    with gameopt.GameOptimizer(args.server,
                               {"generator": g, "discriminator": d},
                               algorithm="conopt", gamma=1.0, lr=0.05,
                               max_steps=args.steps) as opt:
        r, world = opt.shard
        data = make_batches(8)
        sampler = opt.sampler(range(len(data)), shuffle=False)
        shard = list(sampler)
        feed = Feed(g, d, [data[i] for i in shard])
        while not opt.done:
            if opt.steps_done == args.hang_at:
                time.sleep(3600)
            opt.step(feed)
        result = dict(rank=r, world=world, shard=shard,
                      session=opt.session_id, name=opt.worker_name,
                      worker_id=opt.worker_id,
                      params=[p.detach().reshape(-1).tolist()
                              for p in list(g.parameters())
                              + list(d.parameters())])
    with open(os.path.join(args.out, f"rank-{r}.json"), "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
