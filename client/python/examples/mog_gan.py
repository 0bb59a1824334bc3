#!/usr/bin/env python3
"""The mixture-of-Gaussians GAN of "The Numerics of GANs" in PyTorch, trained
by a gameopt server with any number of worker processes.

    /usr/bin/python3 client/python/examples/mog_gan.py \
        --server_binary build/server/gameopt_server --steps 2000 --workers 2
    /usr/bin/python3 client/python/examples/mog_gan.py --server 127.0.0.1:50051
    /usr/bin/python3 client/python/examples/mog_gan.py --server HOST:PORT \
        --session_name mog-conopt --workers 1   # join, e.g. in a container

The same game as client/games/mog_gan.h: 8 modes on the unit circle (std
0.01); generator and discriminator are MLPs of 4 hidden layers x 16 ReLU
units, z of dimension 16; the discriminator minimizes the cross-entropy, the
generator the non-saturating loss; each minibatch is stratified over the
modes (sample j from mode j % 8). The tensors are named w0, b0, ..., w4, b4
as in the C++ game, so both use one layout. Defaults follow the paper:
ConOpt (gamma 10) with RMSProp (lr 1e-4), batch 512.

Writes OUT/samples.png (2,000 samples over the modes) and prints
"RESULT ... modes_covered=K off_mode_share=S": a mode is covered when at least
1% of 2,000 generated samples lie within 3 std of its centre.
"""

import argparse
import math
import multiprocessing
import os
import sys
import time

import numpy as np
import torch

try:
    import gameopt
except ImportError:  # run from a source checkout
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import gameopt
from gameopt.torch import TorchGame

NUM_MODES = 8
RADIUS = 1.0
DATA_STD = 0.01
Z_DIM = 16
WIDTH = 16
DEPTH = 4
EVAL_SAMPLES = 2000
EVAL_SEED = 1  # fixed: coverage is comparable across steps and runs


def mlp(inputs: int, outputs: int, dtype) -> torch.nn.Sequential:
    """DEPTH hidden ReLU layers of WIDTH units, then a linear layer. PyTorch's
    default init, U(-1/sqrt(in), 1/sqrt(in)), is the C++ game's."""
    layers, width_in = [], inputs
    for _ in range(DEPTH):
        layers += [torch.nn.Linear(width_in, WIDTH), torch.nn.ReLU()]
        width_in = WIDTH
    layers.append(torch.nn.Linear(width_in, outputs))
    return torch.nn.Sequential(*layers).to(dtype)


def tensor_names():
    """The C++ game's names: w0, b0, ..., w4, b4 (nn.Linear's weight is
    {out, in}, row-major, as the server's)."""
    return [f"{kind}{l}" for l in range(DEPTH + 1) for kind in ("w", "b")]


def mode_centers() -> np.ndarray:
    angles = 2 * math.pi * np.arange(NUM_MODES) / NUM_MODES
    return RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_batch(seed: int, batch: int, dtype=torch.float64):
    """One minibatch: z (batch x Z_DIM) and real samples (batch x 2), sample j
    from mode j % NUM_MODES."""
    return draw_batch(torch.Generator().manual_seed(seed & (2 ** 63 - 1)),
                      batch, dtype)


def draw_batch(generator: torch.Generator, batch: int, dtype=torch.float32):
    """The next minibatch (z, real) from `generator`'s stream."""
    z = torch.randn(batch, Z_DIM, generator=generator, dtype=dtype)
    centers = torch.tensor(mode_centers(), dtype=dtype)
    modes = torch.arange(batch) % NUM_MODES
    noise = torch.randn(batch, 2, generator=generator, dtype=dtype)
    return z, centers[modes] + DATA_STD * noise


def make_networks(dtype=torch.float32, seed: int = 0):
    """(generator, discriminator), initialized from `seed`."""
    torch.manual_seed(seed)
    return mlp(Z_DIM, 2, dtype), mlp(2, 1, dtype)


def gan_losses(generator, discriminator, minibatch):
    """The players' losses on one minibatch (z, real): one forward pass of
    G and two of D, shared by both losses."""
    z, real = minibatch
    softplus = torch.nn.functional.softplus
    fake_logits = discriminator(generator(z))
    real_logits = discriminator(real)
    return {
        # -log sigma(D(G(z))): non-saturating.
        "generator": softplus(-fake_logits).mean(),
        # -log sigma(D(x)) - log(1 - sigma(D(G(z)))).
        "discriminator": softplus(-real_logits).mean()
                         + softplus(fake_logits).mean(),
    }


def make_game(dtype=torch.float64, batch: int = 512, seed: int = 0):
    """The TorchGame of the MoG GAN, networks initialized from `seed`."""
    generator, discriminator = make_networks(dtype, seed)

    def losses(minibatch):
        return gan_losses(generator, discriminator, minibatch)

    return TorchGame(
        {"generator": generator, "discriminator": discriminator}, losses,
        sample_batch=lambda s: sample_batch(s, batch, dtype),
        tensor_names={"generator": tensor_names(),
                      "discriminator": tensor_names()})


def generate(game: TorchGame, n: int = EVAL_SAMPLES,
             seed: int = EVAL_SEED) -> np.ndarray:
    """n generator samples (n x 2) at the game's current parameters."""
    g = game.modules["generator"]
    dtype = next(g.parameters()).dtype
    z = torch.randn(n, Z_DIM, generator=torch.Generator().manual_seed(seed),
                    dtype=dtype)
    with torch.no_grad():
        return g(z).to(torch.float64).numpy()


def mode_coverage(samples: np.ndarray, centers: np.ndarray = None,
                  data_std: float = DATA_STD):
    """(modes covered, share of samples near no mode): a sample is near a
    mode within 3 std of its centre; a mode is covered by >= 1% of the
    samples (ComputeModeCoverage in client/games/mog_gan.cc)."""
    centers = mode_centers() if centers is None else centers
    distances = np.linalg.norm(samples[:, None, :] - centers[None], axis=2)
    nearest = distances.argmin(axis=1)
    near = distances[np.arange(len(samples)), nearest] <= 3 * data_std
    counts = np.bincount(nearest[near], minlength=len(centers))
    covered = int(np.sum((counts > 0) & (counts >= 0.01 * len(samples))))
    off = float(1 - near.mean()) if len(samples) else 0.0
    return covered, off


def plot(samples: np.ndarray, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4,
                 label="generated")
    for cx, cy in mode_centers():
        axes.add_patch(plt.Circle((cx, cy), 3 * DATA_STD, fill=False,
                                  color="red"))
    axes.scatter(*mode_centers().T, marker="x", color="red", label="modes")
    axes.set_xlim(-1.6, 1.6)
    axes.set_ylim(-1.6, 1.6)
    axes.set_aspect("equal")
    axes.set_title(title)
    axes.legend(loc="upper right")
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run_worker(address: str, session_id: str, index: int, batch: int,
               float32: bool, channel_options: dict) -> None:
    """One worker process: its own networks (their values come from the
    server), its own minibatches (seeded by the server's tasks)."""
    torch.set_num_threads(1)
    dtype = torch.float32 if float32 else torch.float64
    game = make_game(dtype, batch)
    gameopt.Worker(address, session_id, game, name=f"torch-{index}",
                   **channel_options).run()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help="HOST:PORT of a running server")
    where.add_argument("--server_binary",
                       help="start this gameopt_server on a free port")
    parser.add_argument("--session_name",
                        help="join the unfinished session of this name "
                             "(created by `gameopt_client create --name` or "
                             "another process; needs --server) instead of "
                             "creating one; its config wins over the "
                             "flags below")
    parser.add_argument("--wait_s", type=float, default=120.0,
                        help="with --session_name: seconds to wait for it")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (K per round)")
    parser.add_argument("--algorithm", default="conopt",
                        help="simgd, altgd, conopt, sga, extragradient, "
                             "optimistic")
    parser.add_argument("--gamma", type=float, default=10.0)
    parser.add_argument("--optimizer", default="rmsprop")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--estimator", default="pooled")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--seed", type=int, default=1,
                        help="network init and session seed")
    parser.add_argument("--float32", action="store_true",
                        help="float32 networks (the session stays float64)")
    parser.add_argument("--report_every", type=float, default=10.0,
                        help="seconds between progress lines (0: none)")
    parser.add_argument("--out", default="results/mog-torch")
    parser.add_argument("--keep_session", action="store_true")
    parser.add_argument("--tls_roots",
                        help="PEM roots of the server's certificate: TLS")
    parser.add_argument("--token", default=os.environ.get("GAMEOPT_TOKEN"),
                        help="bearer token (default: $GAMEOPT_TOKEN)")
    args = parser.parse_args(argv)
    if args.session_name and not args.server:
        parser.error("--session_name needs --server")

    server = (gameopt.LocalServer(args.server_binary) if args.server_binary
              else None)
    address = server.address if server else args.server
    try:
        game = make_game(torch.float64, args.batch, args.seed)
        options = gameopt.SessionOptions(
            name="mog-torch", algorithm=args.algorithm,
            optimizer=args.optimizer, learning_rate=args.lr, gamma=args.gamma,
            estimator=args.estimator, workers=args.workers,
            max_steps=args.steps, seed=args.seed)
        channel_options = dict(root_certificates=args.tls_roots,
                               token=args.token)
        client = gameopt.Client(address, **channel_options)
        if args.session_name:
            session_id = client.find_session(args.session_name, args.wait_s)
            args.keep_session = True  # others hold it too
            print(f"joining session {session_id} ('{args.session_name}') on "
                  f"{address} with {args.workers} worker(s)", flush=True)
        else:
            session_id = client.create_session(
                gameopt.build_session_config(game, options=options))
            print(f"session {session_id} on {address}: {args.algorithm} "
                  f"({args.optimizer}, lr {args.lr}), {args.workers} "
                  f"worker(s), {args.steps} steps", flush=True)

        context = multiprocessing.get_context("spawn")
        workers = [context.Process(
            target=run_worker,
            args=(address, session_id, i, args.batch, args.float32,
                  channel_options))
            for i in range(args.workers)]
        start = time.time()
        for process in workers:
            process.start()
        last = time.time()
        while any(p.is_alive() for p in workers):
            for p in workers:
                p.join(timeout=0.2)
            if args.report_every > 0 and time.time() - last > args.report_every:
                last = time.time()
                params = client.get_parameters(session_id, game.players())
                game.set_flat(params.flat)
                covered, off = mode_coverage(generate(game))
                print(f"step {params.step}: modes_covered={covered} "
                      f"off_mode_share={off:.3f}", flush=True)
        seconds = time.time() - start
        failed = [p.exitcode for p in workers if p.exitcode != 0]
        if failed:
            print(f"mog_gan: {len(failed)} worker(s) failed: {failed}",
                  file=sys.stderr)
            return 1

        params = client.get_parameters(session_id, game.players())
        game.set_flat(params.flat)
        samples = generate(game)
        covered, off = mode_coverage(samples)
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "samples.png")
        try:
            plot(samples, path, f"{args.algorithm}, step {params.step}: "
                                f"{covered}/{NUM_MODES} modes")
        except ImportError:  # e.g. a container without matplotlib
            path = None
        if not args.keep_session:
            client.delete_session(session_id)
        client.close()
        print(f"RESULT game=mog-torch algorithm={args.algorithm} "
              f"workers={args.workers} steps={params.step} "
              f"modes_covered={covered} off_mode_share={off:.4f} "
              f"seconds={seconds:.2f} steps_per_s={params.step / seconds:.1f}"
              f" out={args.out}")
        if path:
            print(f"wrote {path}")
        return 0
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
