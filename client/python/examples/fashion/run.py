#!/usr/bin/env python3
"""One Fashion-MNIST GAN run, through gameopt (K workers launched by
torchrun) or in-process (plain torch autograd, the baseline); writes
OUT/metrics.json, OUT/samples.png and OUT/curves.png and prints a RESULT
line.

    /usr/bin/python3 client/python/examples/fashion/run.py \\
        --server_binary build/server/gameopt_server --workers 2 \\
        --algorithm conopt --optimizer rmsprop --lr 1e-4 --gamma 10 \\
        --steps 1500 --out results/fashion/conopt-k2
    /usr/bin/python3 client/python/examples/fashion/run.py --in_process \\
        --algorithm simgd --optimizer adam --lr 2e-4 --steps 1500

Curves: about --points snapshots of the parameters during training
(gameopt: the driver polls GetParameters; in-process: every steps/points
steps), evaluated after training with --curve_samples generated samples
(so evaluation does not slow training); the final point with --samples
(10,000). Wall seconds are training only: worker start-up (importing torch,
loading the data) is reported apart as startup_s.
"""

import argparse
import copy
import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, PACKAGE_ROOT)
import numpy as np  # noqa: E402
import torch  # noqa: E402

import gameopt  # noqa: E402
from gameopt.fashion_eval import Evaluator, plot_curves, save_grid  # noqa
from gameopt.fashion_gan import GanConfig, GanData, make_game, \
    train_in_process  # noqa: E402
from gameopt.fashion_metrics import load_or_train_classifier  # noqa: E402
from gameopt.fashion_models import make_gan  # noqa: E402

TRAINED_FILE = "trained.pt"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_command(args, address: str, session_id: str):
    worker_args = ["-m", "gameopt.fashion_worker", "--server", address,
                   "--session_id", session_id, "--dataset", args.dataset,
                   "--size", args.size, "--batch", str(args.batch),
                   "--data_limit", str(args.data_limit),
                   "--device", args.device]
    if args.launcher == "torchrun":
        # --redirects/--tee nonzero: Debian's torch 1.13 under Python 3.11
        # parses their default "0" to None (enum.Flag no longer iterates
        # the 0 member; 3 = OUT|ERR neither) and torchrun fails in to_map.
        # 1: the workers' stdout goes to files under --log_dir and to this
        # console; their stderr stays on this console.
        # Not --standalone: it always listens on port 29400, so two
        # launches on one machine (two runs, a test) collide.
        return [sys.executable, "-m", "torch.distributed.run",
                "--rdzv_backend=c10d",
                f"--rdzv_endpoint=127.0.0.1:{_free_port()}",
                f"--rdzv_id=fashion-{os.getpid()}",
                "--nnodes=1", f"--nproc_per_node={args.workers}",
                "--redirects", "1", "--tee", "1", "--log_dir",
                os.path.join(args.out, "torchrun_logs")] + worker_args
    return None  # "processes": one `python3 -m gameopt.fashion_worker` each


def _optim_command(args, address: str, session_id: str):
    """torchrun of optim_worker.py: GameOptimizer, rank 0 creates the
    session."""
    flags = ["--server", address, "--session", session_id,
             "--dataset", args.dataset, "--size", args.size,
             "--batch", str(args.batch), "--algorithm", args.algorithm,
             "--optimizer", args.optimizer, "--lr", str(args.lr),
             "--gamma", str(args.gamma), "--estimator", args.estimator,
             "--steps", str(args.steps), "--seed", str(args.seed),
             "--data_limit", str(args.data_limit), "--device", args.device]
    return [sys.executable, "-m", "torch.distributed.run",
            "--rdzv_backend=c10d",
            f"--rdzv_endpoint=127.0.0.1:{_free_port()}",
            f"--rdzv_id=fashion-{os.getpid()}", "--nnodes=1",
            f"--nproc_per_node={args.workers}", "--redirects", "1",
            "--tee", "1", "--log_dir",
            os.path.join(args.out, "torchrun_logs"),
            os.path.join(HERE, "optim_worker.py")] + flags


def _launch_workers(args, address, session_id):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.abspath(PACKAGE_ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    if args.api == "optim":
        return [subprocess.Popen(_optim_command(args, address, session_id),
                                 env=env)]
    command = _worker_command(args, address, session_id)
    if command is not None:
        return [subprocess.Popen(command, env=env)]
    base = [sys.executable, "-m", "gameopt.fashion_worker", "--server",
            address, "--session_id", session_id, "--dataset", args.dataset,
            "--size", args.size, "--batch", str(args.batch),
            "--data_limit", str(args.data_limit),
            "--num_shards", str(args.workers), "--device", args.device]
    return [subprocess.Popen(base + ["--index", str(i)], env=env)
            for i in range(args.workers)]


def _save_gamma(status, out: str):
    """An adaptive gamma's trajectory: OUT/gamma.json and a GAMMA line."""
    changes = [{"step": c.step, "gamma": c.gamma, "reason": c.reason}
               for c in status.gamma_trajectory]
    with open(os.path.join(out, "gamma.json"), "w", encoding="utf-8") as f:
        json.dump({"final": status.gamma, "trajectory": changes}, f,
                  indent=1)
    print(f"GAMMA final={status.gamma:g} changes={len(changes)} "
          + " ".join(f"{c['step']}:{c['gamma']:g}({c['reason']})"
                     for c in changes[:20]), flush=True)


def train_gameopt(args, config: GanConfig, targets):
    """Trains through a gameopt server; returns (g, snapshots, seconds,
    startup seconds)."""
    server = (gameopt.LocalServer(args.server_binary) if args.server_binary
              else None)
    address = server.address if server else args.server
    game = make_game(config, GanData(args.dataset, np.zeros((0, 1, 28, 28),
                                                            np.float32),
                                     np.zeros(0, np.int64)))
    try:
        with gameopt.Client(address) as client:
            if args.api == "optim":  # rank 0 creates it
                session_id = f"fashion-{os.getpid()}-{int(time.time())}"
            else:
                session_id = client.create_session(
                    gameopt.build_session_config(
                        game, options=config.session_options(args.steps)))
            launched = time.time()
            workers = _launch_workers(args, address, session_id)
            snapshots, pending = [], list(targets)
            first = None  # time the first step completed
            step = 0
            while True:
                try:
                    params = client.get_parameters(session_id,
                                                   game.players())
                except Exception as error:  # not created yet (optim)
                    if args.api != "optim" or "NOT_FOUND" not in str(
                            getattr(error, "code", lambda: "")()):
                        raise
                    if any(w.poll() not in (None, 0) for w in workers):
                        raise RuntimeError("worker launcher failed")
                    time.sleep(0.2)
                    continue
                step = params.step
                now = time.time()
                if first is None and step >= 1:
                    first = now
                if pending and step >= pending[0]:
                    snapshots.append((step, params.flat.copy(), now))
                    while pending and step >= pending[0]:
                        pending.pop(0)
                if step >= args.steps:
                    break
                failed = [w.returncode for w in workers
                          if w.poll() not in (None, 0)]
                if failed:
                    raise RuntimeError(f"worker launcher failed: {failed}")
                time.sleep(0.2)
            end = time.time()
            for w in workers:
                if w.wait(timeout=120) != 0:
                    raise RuntimeError(f"worker exit code {w.returncode}")
            if config.adaptive_gamma:
                _save_gamma(client.get_session(session_id), args.out)
            client.delete_session(session_id)
    finally:
        if server:
            server.stop()
    # Step 1 took (first - launched) including start-up; count it as one
    # average step.
    steps_time = end - first
    per_step = steps_time / max(1, args.steps - 1)
    startup = (first - launched) - per_step
    t0 = first - per_step
    curve = [(s, flat, max(0.0, t - t0)) for s, flat, t in snapshots]
    game.set_flat(curve[-1][1])
    return game, curve, steps_time + per_step, startup


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--server", help="HOST:PORT of a running server")
    where.add_argument("--server_binary",
                       help="start this gameopt_server on a free port")
    where.add_argument("--in_process", action="store_true",
                       help="plain torch autograd, no server (baseline)")
    parser.add_argument("--launcher", choices=("torchrun", "processes"),
                        default="torchrun")
    parser.add_argument("--api", choices=("worker", "optim"),
                        default="worker",
                        help="worker: gameopt.fashion_worker (Worker + "
                             "TorchGame, seed-driven, float64 session); "
                             "optim: optim_worker.py (GameOptimizer, "
                             "opt.step(closure), float32 session; "
                             "torchrun only)")
    parser.add_argument("--dataset", choices=("stacked", "fashion"),
                        default="stacked")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--device", default="cpu",
                        help="torch device of the workers' (or the "
                             "in-process) networks, e.g. cuda with --size "
                             "gpu; evaluation stays on the CPU")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--algorithm", default="simgd")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--gamma", type=float, default=10.0)
    parser.add_argument("--adaptive_gamma", action="store_true",
                        help="conopt: the server adapts gamma from --gamma "
                             "(--api worker)")
    parser.add_argument("--adaptive_gamma_every", type=int, default=50,
                        help="steps between the field's spectrum estimates")
    parser.add_argument("--adaptive_gamma_max_applications", type=int,
                        default=40, help="operator products per estimate")
    parser.add_argument("--estimator", default="pooled")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--points", type=int, default=10,
                        help="curve points besides step 0")
    parser.add_argument("--samples", type=int, default=10000,
                        help="generated samples for the final metrics")
    parser.add_argument("--curve_samples", type=int, default=2000)
    parser.add_argument("--classifier", default=None,
                        help="cached classifier (default "
                             "~/.cache/gameopt/fashion_classifier.pt; "
                             "trained there when missing)")
    parser.add_argument("--data_limit", type=int, default=0,
                        help="train on the first N images only (tests)")
    parser.add_argument("--label", default="")
    phase = parser.add_mutually_exclusive_group()
    phase.add_argument("--train_only", action="store_true",
                       help="train and save OUT/trained.pt, no metrics")
    phase.add_argument("--eval_only", action="store_true",
                       help="metrics of an earlier --train_only run")
    parser.add_argument("--out", default="results/fashion/run")
    args = parser.parse_args(argv)
    if not (args.eval_only or args.server or args.server_binary
            or args.in_process):
        parser.error("one of --server, --server_binary, --in_process")
    torch.set_num_threads(1)

    config = GanConfig(dataset=args.dataset, size=args.size,
                       batch=args.batch, algorithm=args.algorithm,
                       optimizer=args.optimizer, lr=args.lr,
                       gamma=args.gamma, adaptive_gamma=args.adaptive_gamma,
                       adaptive_gamma_every=args.adaptive_gamma_every,
                       adaptive_gamma_max_applications=(
                           args.adaptive_gamma_max_applications),
                       estimator=args.estimator, workers=args.workers,
                       seed=args.seed)
    if args.adaptive_gamma and (args.api != "worker" or args.in_process):
        parser.error("--adaptive_gamma needs a server and --api worker")
    os.makedirs(args.out, exist_ok=True)
    trained = os.path.join(args.out, TRAINED_FILE)
    if not args.eval_only:
        train(args, config, trained)
    if not args.train_only:
        evaluate(args, config, trained)
    return 0


def train(args, config: GanConfig, path: str) -> None:
    """Trains and saves the generator snapshots and timings to `path`."""
    targets = sorted({round(args.steps * i / args.points)
                      for i in range(args.points + 1)})
    startup = 0.0
    if args.in_process:
        data = GanData.load(args.dataset, limit=args.data_limit or None)
        snapshots = []
        _, _, seconds = train_in_process(
            config, data, args.steps, targets,
            lambda step, t, g, d: snapshots.append(
                (step, {k: v.detach().cpu().clone()
                        for k, v in g.state_dict().items()}, t)),
            device=args.device)
        mode = "in-process"
    else:
        game, curve, seconds, startup = train_gameopt(args, config, targets)
        g = game.modules["generator"]
        snapshots = []
        for step, flat, t in curve:
            game.set_flat(flat)
            snapshots.append((step, copy.deepcopy(g.state_dict()), t))
        mode = (f"gameopt-{args.launcher}" if args.api == "worker"
                else "gameopt-optim-torchrun")
        # Step 0 is the initialization (the driver may first see step > 0).
        if snapshots[0][0] != 0:
            g0, _ = make_gan(args.size, config.channels, args.seed)
            snapshots.insert(0, (0, g0.state_dict(), 0.0))
    torch.save(dict(mode=mode, seconds=seconds, startup=startup,
                    snapshots=snapshots), path)
    print(f"trained {mode} {args.algorithm} K={args.workers}: "
          f"{snapshots[-1][0]} steps in {seconds:.1f}s", flush=True)


def evaluate(args, config: GanConfig, path: str) -> None:
    """Metrics of the snapshots in `path`: OUT/metrics.json, samples.png,
    curves.png and the RESULT line."""
    saved = torch.load(path)
    mode, seconds = saved["mode"], saved["seconds"]
    classifier, accuracy = load_or_train_classifier(args.classifier)
    evaluator = Evaluator(classifier, config.channels)
    g, _ = make_gan(args.size, config.channels, args.seed)
    curve = []
    last = len(saved["snapshots"]) - 1
    for i, (step, state, t) in enumerate(saved["snapshots"]):
        g.load_state_dict(state)
        # Every curve point uses curve_samples (FD's estimate is biased
        # upward with fewer samples, so mixing sizes would bend the curve);
        # the final figures use args.samples.
        point = evaluator.evaluate(g, args.curve_samples)
        curve.append(dict(point, step=step, seconds=round(t, 2)))
        if i == last:
            final = dict(evaluator.evaluate(g, args.samples), step=step)
    label = args.label or (f"{mode} {args.algorithm} {args.optimizer} "
                           f"K={args.workers}")
    result = dict(label=label, mode=mode, config=vars(config),
                  steps=final["step"], seconds=round(seconds, 2),
                  startup_s=round(saved["startup"], 2),
                  step_ms=round(1000 * seconds / max(1, final["step"]), 2),
                  fd=final["fd"], fd_init=curve[0]["fd"],
                  modes=final.get("modes"), kl=final.get("kl"),
                  classifier_accuracy=accuracy, curve=curve)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(result, f, indent=1)
    save_grid(evaluator.generate(g, 64), os.path.join(
        args.out, "samples.png"), f"{label}, step {final['step']}")
    plot_curves({label: curve}, os.path.join(args.out, "curves.png"),
                title=label)
    extra = (f" modes={final['modes']} kl={final['kl']:.3f}"
             if "modes" in final else "")
    print(f"RESULT fashion_gan mode={mode} algorithm={args.algorithm} "
          f"optimizer={args.optimizer} estimator={args.estimator} "
          f"workers={args.workers} steps={final['step']} "
          f"fd_init={curve[0]['fd']:.3f} fd={final['fd']:.3f}{extra} "
          f"seconds={seconds:.1f} out={args.out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
