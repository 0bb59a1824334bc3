#!/usr/bin/env python3
"""A large model through GameOptimizer: what the wire costs per step.

An MLP GAN of width W (G: 64 -> W -> W -> 2, D: 2 -> W -> W -> 1; W = 1400
is about 4M float32 parameters, 16 MB per message), SimGD with RMSProp,
batch 64, fresh minibatch per step. Milliseconds per step of

  inproc           the in-process loop (two autograd.grad calls and
                   torch.optim.RMSprop)
  gameopt          one GameOptimizer worker, glibc malloc as it comes
  gameopt_tuned    the same after gameopt.tune_malloc()

each in a fresh process of its own (malloc settings are per process), the
three alternated `--repeats` times; the median counts. Also the worker's
time per step in encoding the gradients, serializing the request and the
whole SubmitGradient call (which includes the server's step). Prints

  CASE name=<case> ms=<median> encode_ms= serialize_ms= submit_ms=
  RESULT tune_malloc_gain <gameopt / gameopt_tuned>
  RESULT large_simgd_k1 <gameopt_tuned / inproc>

Not run by run.sh (about a minute at W = 1400 on 2 cores):

    /usr/bin/python3 tests/bench/torch_large_bench.py \\
        --server_binary build/server/gameopt_server [--width 1400]
"""

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "client", "python"))


def networks(width: int):
    import torch
    torch.manual_seed(0)
    relu, linear = torch.nn.ReLU, torch.nn.Linear
    g = torch.nn.Sequential(linear(64, width), relu(), linear(width, width),
                            relu(), linear(width, 2))
    d = torch.nn.Sequential(linear(2, width), relu(), linear(width, width),
                            relu(), linear(width, 1))
    return g, d


def make_closure(g, d, batch: int):
    import torch
    softplus = torch.nn.functional.softplus
    rng = torch.Generator().manual_seed(1)

    def closure():
        z = torch.randn(batch, 64, generator=rng)
        real = torch.randn(batch, 2, generator=rng)
        fake = g(z)
        return {"generator": softplus(-d(fake)).mean(),
                "discriminator": softplus(-d(real)).mean() +
                softplus(d(fake.detach())).mean()}
    return closure


def measure(case: str, args) -> dict:
    """One measurement, in this (fresh) process."""
    import torch
    import gameopt
    from gameopt import torch_wire
    torch.set_num_threads(1)
    g, d = networks(args.width)
    closure = make_closure(g, d, args.batch)
    total = args.warmup + args.steps
    if case == "inproc":
        params = list(g.parameters()) + list(d.parameters())
        optimizer = torch.optim.RMSprop(params, lr=1e-4)

        def step():
            losses = closure()
            grads = torch.autograd.grad(losses["generator"],
                                        list(g.parameters()),
                                        retain_graph=True) + \
                torch.autograd.grad(losses["discriminator"],
                                    list(d.parameters()))
            for p, grad in zip(params, grads):
                p.grad = grad
            optimizer.step()
        for _ in range(args.warmup):
            step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        return {"ms": (time.perf_counter() - start) * 1e3 / args.steps}
    if case == "gameopt_tuned":
        assert gameopt.tune_malloc()
    spent = collections.Counter()

    def timed(owner, name, label):
        function = getattr(owner, name)

        def wrapper(*a, **k):
            begin = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                spent[label] += time.perf_counter() - begin
        setattr(owner, name, wrapper)

    opt = gameopt.GameOptimizer(
        args.address, {"generator": g, "discriminator": d},
        algorithm="simgd", optimizer="rmsprop", lr=1e-4,
        session=f"large-{os.getpid()}", max_steps=total, seed=1,
        handle_signals=False)
    with opt:
        for _ in range(args.warmup):
            opt.step(closure)
        timed(opt, "_encode", "encode_ms")
        timed(torch_wire.RawGradientRequest, "SerializeToString",
              "serialize_ms")
        timed(opt._link, "submit_gradient", "submit_ms")
        start = time.perf_counter()
        for _ in range(args.steps):
            opt.step(closure)
        result = {"ms": (time.perf_counter() - start) * 1e3 / args.steps}
    result.update({k: v * 1e3 / args.steps for k, v in spent.items()})
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server_binary",
                        default=os.path.join(REPO, "build", "server",
                                             "gameopt_server"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # a child: one measurement, as JSON
        print(json.dumps(measure(args.case, args)))
        return 0

    import gameopt
    cases = ["inproc", "gameopt", "gameopt_tuned"]
    results = {case: [] for case in cases}
    with gameopt.LocalServer(args.server_binary) as server:
        for r in range(args.repeats):
            for case in cases[r % 3:] + cases[:r % 3]:
                out = subprocess.run(
                    [sys.executable, __file__, "--case", case,
                     "--address", server.address,
                     "--width", str(args.width), "--batch", str(args.batch),
                     "--steps", str(args.steps),
                     "--warmup", str(args.warmup)],
                    check=True, capture_output=True, text=True).stdout
                results[case].append(json.loads(out.splitlines()[-1]))
            print(f"repeat {r + 1}/{args.repeats}: " + " ".join(
                f"{c}={results[c][-1]['ms']:.1f}" for c in cases),
                file=sys.stderr, flush=True)
    median = {}
    for case in cases:
        keys = results[case][0].keys()
        median[case] = {k: statistics.median(m[k] for m in results[case])
                        for k in keys}
        print(f"CASE name={case} " + " ".join(
            f"{k}={v:.2f}" for k, v in median[case].items()))
    print(f"RESULT tune_malloc_gain "
          f"{median['gameopt']['ms'] / median['gameopt_tuned']['ms']:.3f}")
    print(f"RESULT large_simgd_k1 "
          f"{median['gameopt_tuned']['ms'] / median['inproc']['ms']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
