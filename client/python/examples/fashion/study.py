#!/usr/bin/env python3
"""The Fashion-MNIST GAN study: simultaneous Adam/RMSProp vs ConOpt (gamma 1
and 10), pooled vs unbiased estimator, K = 1, 2, 4 torchrun workers through
a gameopt server, and the in-process (plain autograd) baseline; writes
OUT/results.md (the table), OUT/results.json, OUT/curves_steps.png,
OUT/curves_seconds.png and each run's folder (metrics.json, samples.png,
curves.png).

    /usr/bin/python3 client/python/examples/fashion/study.py \\
        --server_binary build/server/gameopt_server --steps 400 \\
        --out results/fashion

All runs train first, one at a time (so their wall times do not overlap),
then all are evaluated (the classifier is trained and cached first if
missing: client/python/examples/fashion/train_classifier.py). A run whose
OUT/LABEL/trained.pt exists is not trained again (an interrupted study
resumes; so is evaluation, where metrics.json is newer). --only
LABEL,... runs a subset; --skip_train re-evaluates earlier runs;
--seeds 1,2,3 repeats every run with each seed (labels LABEL-sSEED) and
adds a table of mean ± standard deviation over the seeds.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from gameopt.fashion_eval import plot_curves  # noqa: E402

SIMGD_LR = 5e-4
CONOPT_LR = 5e-4

# label -> run.py flags. Simultaneous updates with Adam and RMSProp; ConOpt
# (as in "The Numerics of GANs") with RMSProp.
CONFIGS = [
    ("inproc-simgd-adam", ["--in_process", "--algorithm", "simgd",
                           "--optimizer", "adam", "--lr", str(SIMGD_LR)]),
    ("inproc-conopt-g10", ["--in_process", "--algorithm", "conopt",
                           "--optimizer", "rmsprop", "--lr", str(CONOPT_LR),
                           "--gamma", "10"]),
    ("k1-simgd-adam", ["--workers", "1", "--algorithm", "simgd",
                       "--optimizer", "adam", "--lr", str(SIMGD_LR)]),
    ("k1-simgd-rmsprop", ["--workers", "1", "--algorithm", "simgd",
                          "--optimizer", "rmsprop", "--lr", str(SIMGD_LR)]),
    ("k1-conopt-g1-pooled", ["--workers", "1", "--algorithm", "conopt",
                             "--optimizer", "rmsprop", "--lr",
                             str(CONOPT_LR), "--gamma", "1"]),
]
# The unbiased estimator at K = 2 only (K = 1 needs two samples per
# worker; K = 4 doubles the cost of the largest run): sized for 2 shared
# CPU cores.
for k, estimator in ((1, "pooled"), (2, "pooled"), (2, "unbiased"),
                     (4, "pooled")):
    CONFIGS.append((f"k{k}-conopt-g10-{estimator}", [
        "--workers", str(k), "--algorithm", "conopt", "--optimizer",
        "rmsprop", "--lr", str(CONOPT_LR), "--gamma", "10",
        "--estimator", estimator]))
# ConOpt from gamma 10 with the server's adaptive gamma (a field estimate of
# at most 40 products every 50 steps).
CONFIGS.append(("k1-conopt-g10-adaptive", [
    "--workers", "1", "--algorithm", "conopt", "--optimizer", "rmsprop",
    "--lr", str(CONOPT_LR), "--gamma", "10", "--adaptive_gamma"]))
# The same ConOpt run at K = 2 with GameOptimizer (opt.step(closure), the
# gradient graph kept for the products, a float32 session).
CONFIGS.append(("k2-optim-conopt-g10-pooled", [
    "--api", "optim", "--workers", "2", "--algorithm", "conopt",
    "--optimizer", "rmsprop", "--lr", str(CONOPT_LR), "--gamma", "10"]))
# The long study (LONG below): every gameopt run with GameOptimizer.
# Simultaneous Adam and RMSProp; ConOpt with gamma 1 (the best of the
# short study) at K = 1, 2 (pooled and unbiased) and 4, and gamma 10 at
# K = 1; in-process ConOpt gamma 1 as its baseline.
CONFIGS.append(("inproc-conopt-g1", [
    "--in_process", "--algorithm", "conopt", "--optimizer", "rmsprop",
    "--lr", str(CONOPT_LR), "--gamma", "1"]))
for optimizer in ("adam", "rmsprop"):
    CONFIGS.append((f"k1-optim-simgd-{optimizer}", [
        "--api", "optim", "--workers", "1", "--algorithm", "simgd",
        "--optimizer", optimizer, "--lr", str(SIMGD_LR)]))
for k, gamma, estimator in ((1, 1, "pooled"), (1, 10, "pooled"),
                            (2, 1, "pooled"), (2, 1, "unbiased"),
                            (4, 1, "pooled")):
    CONFIGS.append((f"k{k}-optim-conopt-g{gamma}-{estimator}", [
        "--api", "optim", "--workers", str(k), "--algorithm", "conopt",
        "--optimizer", "rmsprop", "--lr", str(CONOPT_LR), "--gamma",
        str(gamma), "--estimator", estimator]))
LONG = ["inproc-simgd-adam", "inproc-conopt-g1", "k1-optim-simgd-adam",
        "k1-optim-simgd-rmsprop", "k1-optim-conopt-g1-pooled",
        "k1-optim-conopt-g10-pooled", "k2-optim-conopt-g1-pooled",
        "k2-optim-conopt-g1-unbiased", "k4-optim-conopt-g1-pooled"]


def _fmt(value, spec):
    return "" if value is None else format(value, spec)


def write_table(results, path, header):
    lines = [header, "",
             "| run | K | steps | wall s | ms/step | FD init | FD final "
             "| modes /1000 | KL | FD at equal wall time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    common = min(r["seconds"] for r in results) if results else 0
    for r in results:
        # The curve point closest to, not after, the shortest run's time.
        before = [p for p in r["curve"] if p["seconds"] <= common + 1e-9]
        at = before[-1] if before else r["curve"][0]
        lines.append(
            f"| {r['label']} | {r['config']['workers']} | {r['steps']} | "
            f"{r['seconds']:.0f} | {r['step_ms']:.0f} | {r['fd_init']:.1f} | "
            f"{r['fd']:.1f} | {_fmt(r.get('modes'), 'd')} | "
            f"{_fmt(r.get('kl'), '.2f')} | {at['fd']:.1f} (step "
            f"{at['step']}) |")
    lines += ["", f"FD at equal wall time: the curve point at or before "
                  f"{common:.0f} s, the shortest run's training time "
                  f"(curve points use fewer samples than the final "
                  f"column)."]
    lines += seed_summary(results)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _mean_sd(values, spec):
    """"mean ± sd" (sd over the seeds, n - 1), or the value alone."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return format(mean, spec)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{format(mean, spec)} ± {format(sd, spec)}"


def seed_groups(results):
    """Configuration -> its runs, for configurations run with more than
    one seed (labels LABEL-sN)."""
    groups = {}
    for r in results:
        base, _, seed = r["label"].rpartition("-s")
        if base and seed.isdigit():
            groups.setdefault(base, []).append(r)
    return {k: v for k, v in groups.items() if len(v) > 1}


def plotted_curves(results):
    """label -> curve for the plots: one curve per configuration, the mean
    over its seeds point by point (step, seconds, FD, modes), or the run's
    own curve when it has one seed."""
    groups = seed_groups(results)
    grouped = {id(r) for runs in groups.values() for r in runs}
    curves = {r["label"]: r["curve"] for r in results
              if id(r) not in grouped}
    for base, runs in groups.items():
        points = min(len(r["curve"]) for r in runs)
        curves[f"{base} (mean of {len(runs)})"] = [
            {key: sum(r["curve"][i][key] for r in runs) / len(runs)
             for key in runs[0]["curve"][i]
             if all(r["curve"][i].get(key) is not None for r in runs)}
            for i in range(points)]
    return curves


def seed_summary(results):
    """The table's lines over seeds: one row per configuration run with
    more than one seed (labels LABEL-sN), mean ± standard deviation."""
    groups = seed_groups(results)
    if not groups:
        return []
    lines = ["", "Over seeds (mean ± standard deviation):", "",
             "| configuration | K | seeds | ms/step | FD final | modes /1000 "
             "| KL |", "|---|---|---|---|---|---|---|"]
    for base, runs in groups.items():
        lines.append(
            f"| {base} | {runs[0]['config']['workers']} | {len(runs)} | "
            f"{_mean_sd([r['step_ms'] for r in runs], '.0f')} | "
            f"{_mean_sd([r['fd'] for r in runs], '.1f')} | "
            f"{_mean_sd([r.get('modes') for r in runs], '.0f')} | "
            f"{_mean_sd([r.get('kl') for r in runs], '.2f')} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server_binary", required=True)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--curve_samples", type=int, default=1000)
    parser.add_argument("--dataset", default="stacked")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--only", default="",
                        help="comma-separated labels, or 'long' for the "
                             "long study's (default: all)")
    parser.add_argument("--skip_train", action="store_true")
    parser.add_argument("--jobs", type=int, default=2,
                        help="evaluations at once (training is one run at "
                             "a time)")
    parser.add_argument("--classifier", default=None,
                        help="run.py --classifier (default: the cache)")
    parser.add_argument("--seeds", default="1",
                        help="comma-separated seeds (model initialization "
                             "and minibatches); with more than one, each "
                             "run is labelled LABEL-sSEED and the table "
                             "adds mean ± sd over the seeds")
    parser.add_argument("--out", default="results/fashion")
    args = parser.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    if "long" in only:
        only = (only - {"long"}) | set(LONG)
    unknown = only - {label for label, _ in CONFIGS}
    if unknown:
        parser.error(f"unknown --only labels {sorted(unknown)}; known: "
                     f"{', '.join(label for label, _ in CONFIGS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    configs = [((f"{label}-s{seed}" if len(seeds) > 1 else label),
                flags + ["--seed", str(seed)])
               for label, flags in CONFIGS if not only or label in only
               for seed in seeds]
    run_py = os.path.join(HERE, "run.py")
    common = ["--steps", str(args.steps), "--points", str(args.points),
              "--samples", str(args.samples), "--curve_samples",
              str(args.curve_samples), "--dataset", args.dataset,
              "--size", args.size]
    started = time.time()
    if not args.skip_train:
        for label, flags in configs:
            if os.path.exists(os.path.join(args.out, label, "trained.pt")):
                print(f"{label}: trained earlier (delete "
                      f"{args.out}/{label} to train again)", flush=True)
                continue
            where = ([] if "--in_process" in flags
                     else ["--server_binary", args.server_binary])
            subprocess.run([sys.executable, run_py, "--train_only",
                            "--label", label, "--out",
                            os.path.join(args.out, label)] + common + where
                           + flags, check=True)
    trained = time.time()
    evaluate = ["--classifier", args.classifier] if args.classifier else []
    pending = []
    for label, flags in configs:
        run_dir = os.path.join(args.out, label)
        metrics = os.path.join(run_dir, "metrics.json")
        if os.path.exists(metrics) and os.path.getmtime(metrics) > \
                os.path.getmtime(os.path.join(run_dir, "trained.pt")):
            print(f"{label}: evaluated earlier", flush=True)
            continue
        pending.append([sys.executable, run_py, "--eval_only", "--label",
                        label, "--out", run_dir] + common + flags + evaluate)
    running = []
    while pending or running:  # up to --jobs evaluations at once
        while pending and len(running) < args.jobs:
            running.append(subprocess.Popen(pending.pop(0)))
        done = running.pop(0)
        if done.wait() != 0:
            raise subprocess.CalledProcessError(done.returncode, done.args)
    results = []
    for label, _ in configs:
        with open(os.path.join(args.out, label, "metrics.json")) as f:
            results.append(json.load(f))
    total = time.time() - started
    accuracy = results[0]["classifier_accuracy"] if results else 0
    training = sum(r["seconds"] + r["startup_s"] for r in results)
    header = (f"Fashion-MNIST GAN study ({args.dataset}, {args.size} "
              f"models, batch 32 per worker): {args.steps} steps per run; "
              f"classifier test accuracy {accuracy:.4f}; training "
              f"{training / 60:.1f} min in all (the runs' wall seconds and "
              f"worker start-up); this invocation {total / 60:.1f} min "
              f"({(trained - started) / 60:.1f} training, the rest "
              f"evaluating) on {platform.machine()} with {os.cpu_count()} "
              f"cores ({platform.node()}).")
    write_table(results, os.path.join(args.out, "results.md"), header)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    curves = plotted_curves(results)
    plot_curves(curves, os.path.join(args.out, "curves_steps.png"), "step",
                "Frechet distance and modes vs steps")
    plot_curves(curves, os.path.join(args.out, "curves_seconds.png"),
                "seconds", "Frechet distance and modes vs wall time")
    print(open(os.path.join(args.out, "results.md")).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
