#!/usr/bin/env python3
"""The mixture-of-Gaussians GAN of "The Numerics of GANs" in PyTorch, trained
by a gameopt server from this script's own loop (gameopt.GameOptimizer),
with any number of worker processes.

    /usr/bin/python3 client/python/examples/mog_gan.py \
        --server_binary build/server/gameopt_server     # the defaults
    /usr/bin/python3 client/python/examples/mog_gan.py \
        --server 127.0.0.1:50051 --workers 2 --steps 2000
    /usr/bin/python3 client/python/examples/mog_gan.py --server HOST:PORT \
        --session_name mog-conopt --workers 1   # join, e.g. in a container

The same game as client/games/mog_gan.h: 8 modes on the unit circle (std
0.01); generator and discriminator are MLPs of 4 hidden layers x 16 ReLU
units, z of dimension 16; the discriminator minimizes the cross-entropy, the
generator the non-saturating loss; each minibatch is stratified over the
modes (sample j from mode j % 8). The tensors are named w0, b0, ..., w4, b4
as in the C++ game, so both use one layout.

Defaults (DEFAULTS below): ConOpt gamma 10, RMSProp with the TF1 preset (the
paper's), the learning rate from 1e-3 down to 1e-4 along a cosine over 6,000
steps, batch 512 per worker, float32, 1 worker: 8 / 8 modes at 6,000 steps
for seeds 1, 2, 3 when measured (client/README.md, "What the demo
shows"). The
paper's constant lr 1e-4 (`--lr 1e-4 --lr_schedule constant`) needs about
19,000 steps.

Rank 0 runs in this process and prints the mode coverage, the losses and
the learning rate every --report_every steps (OUT/coverage.csv); --workers
K starts K - 1 more processes, each with its own minibatches. Writes
OUT/samples.png (2,000 samples over the modes) and prints "RESULT ...
modes_covered=K off_mode_share=S": a mode is covered when at least 1% of
2,000 generated samples lie within 3 std of its centre.
"""

import argparse
import math
import multiprocessing
import os
import socket
import sys
import time

import numpy as np
import torch

try:
    import gameopt
except ImportError:  # run from a source checkout
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import gameopt
from gameopt.optim import SessionDone
from gameopt.torch import GameOptimizer, TorchGame

NUM_MODES = 8
RADIUS = 1.0
DATA_STD = 0.01
Z_DIM = 16
WIDTH = 16
DEPTH = 4
EVAL_SAMPLES = 2000
EVAL_SEED = 1  # fixed: coverage is comparable across steps and runs


class MLP(torch.nn.Module):
    """DEPTH hidden ReLU layers of WIDTH units, then a linear layer, with the
    C++ game's tensor names w0, b0, ..., w4, b4 (nn.Linear's weight is
    {out, in}, row-major, as the server's). PyTorch's default init,
    U(-1/sqrt(in), 1/sqrt(in)), is the C++ game's."""

    def __init__(self, inputs: int, outputs: int, dtype=torch.float32):
        super().__init__()
        sizes = [inputs] + [WIDTH] * DEPTH + [outputs]
        for l in range(DEPTH + 1):
            layer = torch.nn.Linear(sizes[l], sizes[l + 1]).to(dtype)
            self.register_parameter(f"w{l}", layer.weight)
            self.register_parameter(f"b{l}", layer.bias)

    def forward(self, x):
        for l in range(DEPTH + 1):
            x = torch.nn.functional.linear(x, getattr(self, f"w{l}"),
                                           getattr(self, f"b{l}"))
            if l < DEPTH:
                x = torch.relu(x)
        return x


def mlp(inputs: int, outputs: int, dtype=torch.float32) -> MLP:
    return MLP(inputs, outputs, dtype)


def tensor_names():
    """The C++ game's names: w0, b0, ..., w4, b4."""
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
    key = (batch, dtype)
    if key not in _MEANS:  # sample j's mode centre, j % NUM_MODES
        _MEANS[key] = torch.tensor(mode_centers(), dtype=dtype)[
            torch.arange(batch) % NUM_MODES]
    noise = torch.randn(batch, 2, generator=generator, dtype=dtype)
    return z, _MEANS[key] + DATA_STD * noise


_MEANS = {}


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


def generate(generator: torch.nn.Module, n: int = EVAL_SAMPLES,
             seed: int = EVAL_SEED) -> np.ndarray:
    """n samples (n x 2) of the generator at its current parameters."""
    dtype = next(generator.parameters()).dtype
    z = torch.randn(n, Z_DIM, generator=torch.Generator().manual_seed(seed),
                    dtype=dtype)
    with torch.no_grad():
        return generator(z).to(torch.float64).numpy()


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


# The configuration that covers the modes in a short run (client/README.md,
# "What the demo shows", has its measured coverage): ConOpt, gamma 10, RMSProp
# with the TF1 preset, the learning rate from 1e-3 down to 1e-4 along a
# cosine over the run (the paper's constant 1e-4 needs about 19,000 steps).
DEFAULTS = dict(algorithm="conopt", optimizer="rmsprop", rmsprop_preset="tf1",
                lr=1e-3, lr_schedule="cosine", lr_min=1e-4, gamma=10.0,
                estimator="pooled", steps=6000)


def session_options(args) -> dict:
    """GameOptimizer's keyword options from the flags. A flag given on the
    command line is always passed (GameOptimizer refuses one that the
    algorithm or optimizer ignores, naming it); a default only where it is
    read."""
    options = dict(name="mog-torch", max_steps=args.steps, seed=args.seed)
    relevant = {
        "rmsprop_preset": args.optimizer == "rmsprop",
        "gamma": args.algorithm == "conopt",
        "estimator": args.algorithm in ("conopt", "sga"),
    }
    for name, used in relevant.items():
        value = getattr(args, name)
        if value is not None or used:
            options[name] = DEFAULTS[name] if value is None else value
    if options.get("estimator") == "local":
        options["fuse_local_products"] = True  # one round per step
    schedule = args.lr_schedule or DEFAULTS["lr_schedule"]
    if schedule == "cosine":  # from --lr down to --lr_min at the last step
        options["schedule"] = gameopt.CosineAnnealingLR(
            args.steps, DEFAULTS["lr_min"] if args.lr_min is None
            else args.lr_min)
    elif args.lr_min is not None:
        raise ValueError("--lr_min is read only by --lr_schedule cosine")
    return options


def worker_name(args, rank: int) -> str:
    """rank-<r> in a session of our own; in a joined one (--session_name)
    the host too, so that processes on several hosts (containers) do not
    take each other's place (GameOptimizer rejoins by name)."""
    if args.session_name:
        return f"torch-{socket.gethostname()}-rank-{rank}"
    return f"rank-{rank}"


def train(args, address: str, session: str, rank: int, create: bool,
          channel_options: dict, report=None) -> torch.nn.Module:
    """One worker: the user's loop over fresh minibatches, driving
    opt.step() until the session is done; `report(opt, generator, losses)`
    after every step. Returns the generator."""
    torch.set_num_threads(1 if args.workers > 1 else torch.get_num_threads())
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    generator, discriminator = make_networks(dtype, args.seed)
    client = gameopt.Client(address, **channel_options)
    opt = GameOptimizer(
        client, {"generator": generator, "discriminator": discriminator},
        algorithm=args.algorithm, optimizer=args.optimizer, lr=args.lr,
        session=session, create=create, rank=rank,
        world_size=args.workers, worker_name=worker_name(args, rank),
        **session_options(args))
    data = torch.Generator().manual_seed(1000 * args.seed + rank)

    def closure():
        batch = draw_batch(data, args.batch, dtype)
        return gan_losses(generator, discriminator, batch)

    with opt:
        while not opt.done:
            try:
                losses = opt.step(closure)
            except SessionDone:
                break
            if report is not None:
                report(opt, generator, losses)
    client.close()
    return generator


def run_rank(args, address, session, rank, channel_options) -> None:
    train(args, address, session, rank, False, channel_options)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--steps", type=int, default=DEFAULTS["steps"],
                        help=f"steps of the session (default "
                             f"{DEFAULTS['steps']})")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (K per round), each with its "
                             "own minibatches")
    parser.add_argument("--algorithm", default=DEFAULTS["algorithm"],
                        help="simgd, altgd, conopt (default), sga, "
                             "extragradient, optimistic, optimistic_adam "
                             "(with --optimizer adam), "
                             "extrapolation_from_the_past, lead")
    parser.add_argument("--gamma", type=float,
                        help=f"conopt: weight of the consensus term "
                             f"(default {DEFAULTS['gamma']:g})")
    parser.add_argument("--optimizer", default=DEFAULTS["optimizer"],
                        help="sgd, momentum, nesterov, rmsprop (default), "
                             "adam")
    parser.add_argument("--rmsprop_preset", choices=("tf1", "pytorch"),
                        help=f"rmsprop: TensorFlow 1's constants (the "
                             f"paper's) or PyTorch's (default "
                             f"{DEFAULTS['rmsprop_preset']})")
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"],
                        help=f"the (first) learning rate (default "
                             f"{DEFAULTS['lr']:g})")
    parser.add_argument("--lr_schedule", choices=("constant", "cosine"),
                        help=f"constant, or cosine from --lr to --lr_min "
                             f"over --steps (CosineAnnealingLR, server-side)"
                             f" (default {DEFAULTS['lr_schedule']})")
    parser.add_argument("--lr_min", type=float,
                        help=f"cosine: the last learning rate (default "
                             f"{DEFAULTS['lr_min']:g})")
    parser.add_argument("--estimator", choices=("local", "pooled", "unbiased"),
                        help=f"conopt/sga: the estimate of J^T xi over the "
                             f"workers' minibatches (local: fused into the "
                             f"gradient round; unbiased needs >= 2 gradient "
                             f"samples; default {DEFAULTS['estimator']})")
    parser.add_argument("--batch", type=int, default=512,
                        help="minibatch size per worker and gradient "
                             "(default 512)")
    parser.add_argument("--seed", type=int, default=1,
                        help="network init, data and session seed")
    parser.add_argument("--dtype", default="float32",
                        choices=("float32", "float64"),
                        help="the networks' and the session's dtype "
                             "(default float32)")
    parser.add_argument("--report_every", type=int, default=250,
                        help="steps between coverage lines (0: none; "
                             "default 250)")
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
    channel_options = dict(root_certificates=args.tls_roots,
                           token=args.token)
    try:
        client = gameopt.Client(address, **channel_options)
        if args.session_name:
            session = client.find_session(args.session_name, args.wait_s)
            create = False
            args.keep_session = True  # others hold it too
            print(f"joining session {session} ('{args.session_name}') on "
                  f"{address} with {args.workers} worker(s)", flush=True)
        else:
            session = f"mog-torch-{os.getpid()}-{int(time.time())}"
            create = True
            print(f"session {session} on {address}: {args.algorithm} "
                  f"({args.optimizer}, lr {args.lr:g}), {args.workers} "
                  f"worker(s) x batch {args.batch}, {args.steps} steps, "
                  f"{args.dtype}", flush=True)

        # Ranks 1..K-1 in processes of their own; rank 0 is this process,
        # which also watches the coverage.
        context = multiprocessing.get_context("spawn")
        others = [context.Process(
            target=run_rank,
            args=(args, address, session, rank, channel_options))
            for rank in range(1, args.workers)]
        for process in others:
            process.start()

        curve = []
        start = time.time()

        def report(opt, generator, losses):
            step = opt.steps_done
            if args.report_every > 0 and (step % args.report_every == 0
                                          or opt.done):
                covered, off = mode_coverage(generate(generator))
                curve.append((step, covered, off))
                lr = opt.learning_rates()[opt.player_names[0]]
                print(f"step {step}: modes_covered={covered} "
                      f"off_mode_share={off:.3f} "
                      + " ".join(f"loss/{k}={v:.4f}" for k, v in
                                 losses.items())
                      + f" lr={lr:.3g} ({time.time() - start:.0f} s)",
                      flush=True)

        try:
            generator = train(args, address, session, 0, create,
                              channel_options, report)
        except (ValueError, TypeError, KeyError, gameopt.Error) as error:
            for process in others:  # they would wait for the session
                process.terminate()
            print(f"mog_gan: {error}", file=sys.stderr)
            return 2
        seconds = time.time() - start
        for process in others:
            process.join()
        failed = [p.exitcode for p in others if p.exitcode != 0]
        if failed:
            print(f"mog_gan: {len(failed)} worker process(es) failed: "
                  f"{failed}", file=sys.stderr)
            return 1

        # The session's final parameters (the loop ends with them loaded;
        # read again for a session that was done before we joined).
        tensors = client.get_parameters(session).tensors()["generator"]
        with torch.no_grad():
            for name, value in generator.named_parameters():
                value.copy_(torch.from_numpy(tensors[name]))
        step = client.get_session(session).step
        samples = generate(generator)
        covered, off = mode_coverage(samples)
        os.makedirs(args.out, exist_ok=True)
        if curve:
            with open(os.path.join(args.out, "coverage.csv"), "w") as f:
                f.write("step,modes_covered,off_mode_share\n")
                for row in curve:
                    f.write(f"{row[0]},{row[1]},{row[2]:.4f}\n")
        path = os.path.join(args.out, "samples.png")
        try:
            plot(samples, path, f"{args.algorithm}, step {step}: "
                                f"{covered}/{NUM_MODES} modes")
        except ImportError:  # e.g. a container without matplotlib
            path = None
        if not args.keep_session:
            client.delete_session(session)
        client.close()
        print(f"RESULT game=mog-torch algorithm={args.algorithm} "
              f"workers={args.workers} steps={step} "
              f"modes_covered={covered} off_mode_share={off:.4f} "
              f"seconds={seconds:.2f} steps_per_s={step / seconds:.1f}"
              f" out={args.out}")
        if path:
            print(f"wrote {path}")
        return 0
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
