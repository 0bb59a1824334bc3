#!/usr/bin/env python3
"""Trains the Fashion-MNIST classifier of the GAN metrics once and caches it
(default ~/.cache/gameopt/fashion_classifier.pt, or $GAMEOPT_CACHE_DIR);
prints its test accuracy. Run again: loads the cached one.

    /usr/bin/python3 client/python/examples/fashion/train_classifier.py
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
import torch  # noqa: E402

from gameopt.fashion_metrics import CLASSIFIER_FILE, cache_dir, \
    load_or_train_classifier  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", default=None,
                        help=f"default: {cache_dir()}/{CLASSIFIER_FILE}")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--width", type=int, default=16,
                        help="channels of the first conv layer")
    parser.add_argument("--train_limit", type=int, default=0,
                        help="train on the first N images (a quick "
                             "classifier for tests)")
    parser.add_argument("--min_accuracy", type=float, default=0.9,
                        help="exit 1 below this test accuracy")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (more only on an idle "
                             "machine: on a busy one they spin)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.time()
    _, acc = load_or_train_classifier(args.path, epochs=args.epochs,
                                      width=args.width,
                                      train_limit=args.train_limit)
    print(f"RESULT classifier test_accuracy={acc:.4f} "
          f"seconds={time.time() - start:.0f}")
    return 0 if acc >= args.min_accuracy else 1


if __name__ == "__main__":
    sys.exit(main())
