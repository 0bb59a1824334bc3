"""The Fashion-MNIST GAN (client/python/gameopt/fashion*.py,
client/python/examples/fashion): the data loader, the metrics, a short run
through a real gameopt_server with two torchrun ranks of GameOptimizer
(optim_worker.py), and the Kubernetes Indexed Job's commands (docker/k8s/
fashion: gameopt.fashion_worker, the Worker API) run as host processes. No
quality claims: the study (examples/fashion/study.py) has those."""

import gzip
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import REPO
from testutil import run

import gameopt
from gameopt import fashion
from gameopt.fashion_metrics import frechet_distance, mode_statistics

EXAMPLES = REPO / "client" / "python" / "examples" / "fashion"
K8S = REPO / "docker" / "k8s" / "fashion"
CACHED_CLASSIFIER = os.path.join(os.path.expanduser("~"), ".cache",
                                 "gameopt", "fashion_classifier.pt")
TOLERANCE = 1e-6


def _have_data():
    try:
        fashion.installed_paths()
        return True
    except fashion.FashionMnistMissing:
        return False


needs_data = pytest.mark.skipif(
    not _have_data(), reason="dataset-fashion-mnist is not installed "
                             "(tests/install_deps.sh)")


def test_missing_files_name_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv(fashion.DIR_ENV, str(tmp_path))
    with pytest.raises(fashion.FashionMnistMissing) as error:
        fashion.load_fashion_mnist("train")
    assert "dataset-fashion-mnist" in str(error.value)
    assert str(tmp_path) in str(error.value)


def _write_idx(path, array, compress):
    kind = {np.dtype(np.uint8): 0x08}[array.dtype]
    header = bytes([0, 0, kind, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.mark.parametrize("compress", [True, False])
def test_reads_idx_files_gzipped_or_not(tmp_path, compress):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    got_images, got_labels = fashion.load_fashion_mnist("test", str(tmp_path))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_truncated_idx_file_is_refused(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    _write_idx(path, np.zeros((2, 28, 28), np.uint8), False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="bytes of data"):
        fashion.read_idx(str(path))


@needs_data
def test_installed_dataset_has_the_published_sizes():
    images, labels = fashion.load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10


def test_stacked_samples_have_three_independent_channels():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(50, 1, 28, 28)).astype(np.float32)
    labels = np.arange(50) % 10
    x, modes = fashion.StackedFashion(images, labels).sample(rng, 2000)
    assert x.shape == (2000, 3, 28, 28)
    assert modes.min() >= 0 and modes.max() < 1000
    # ~2000 draws over 1000 uniform modes cover ~86% of them.
    assert len(np.unique(modes)) > 700
    assert fashion.mode_of(np.array([[1, 2, 3]])).tolist() == [123]


def test_shards_partition_the_indices():
    parts = [fashion.shard(10, i, 3) for i in range(3)]
    assert np.concatenate(parts).tolist() == list(range(10))
    with pytest.raises(ValueError):
        fashion.shard(10, 3, 3)


def test_frechet_distance_matches_the_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(
        (np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, abs=TOLERANCE)
    # Non-diagonal, non-commuting covariances: symmetric in its arguments
    # and zero against itself.
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    c1, c2 = m1 @ m1.T, m2 @ m2.T
    assert frechet_distance(mu1[:1].repeat(5), c1, mu1[:1].repeat(5),
                            c1) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(np.zeros(5), c1, np.ones(5), c2) == \
        pytest.approx(frechet_distance(np.ones(5), c2, np.zeros(5), c1),
                      abs=1e-6)


class _FixedClassifier:
    """Stands in for the classifier in mode_statistics: class = the
    image's first pixel (its input is each channel as one image)."""

    def __call__(self, x):
        import torch
        return torch.nn.functional.one_hot(
            x[:, 0, 0, 0].long(), 10).float()


def test_mode_statistics_counts_modes_and_kl():
    classes = np.array([[a, b, c] for a in range(10) for b in range(10)
                        for c in range(10)], dtype=np.float32)
    uniform = np.broadcast_to(classes[:, :, None, None],
                              (1000, 3, 28, 28)).copy()
    covered, kl = mode_statistics(_FixedClassifier(), uniform)
    assert covered == 1000 and kl == pytest.approx(0, abs=TOLERANCE)
    collapsed = np.zeros((500, 3, 28, 28), np.float32)
    covered, kl = mode_statistics(_FixedClassifier(), collapsed)
    assert covered == 1 and kl == pytest.approx(math.log(1000),
                                                abs=TOLERANCE)


def _classifier(workdir):
    """The cached classifier when present, else a quick one (2,000 images,
    one epoch, width 8) trained here."""
    if os.path.exists(CACHED_CLASSIFIER):
        return CACHED_CLASSIFIER
    path = workdir / "classifier.pt"
    run([sys.executable, EXAMPLES / "train_classifier.py", f"--path={path}",
         "--epochs=1", "--width=8", "--train_limit=2000",
         "--min_accuracy=0.3", "--threads=1"], timeout=300)
    return path


@needs_data
def test_two_gameoptimizer_ranks_train_and_the_frechet_distance_falls(
        server_binary, workdir):
    out = workdir / "run"
    stdout = run([sys.executable, EXAMPLES / "run.py",
                  f"--server_binary={server_binary}", "--workers=2",
                  "--api=optim", "--algorithm=conopt",
                  "--optimizer=rmsprop", "--lr=1e-3", "--gamma=10",
                  "--steps=60", "--points=2", "--samples=1000",
                  "--curve_samples=1000", "--data_limit=4000",
                  f"--classifier={_classifier(workdir)}", f"--out={out}"],
                 timeout=600)
    assert "RESULT fashion_gan mode=gameopt-optim-torchrun" in stdout, stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 60
    assert [p["step"] for p in metrics["curve"]][0] == 0
    for point in metrics["curve"]:
        assert math.isfinite(point["fd"]) and point["fd"] >= 0
        assert 1 <= point["modes"] <= 1000
        assert 0 <= point["kl"] <= math.log(1000) + TOLERANCE
    assert metrics["fd"] < metrics["fd_init"], metrics["curve"]
    for name in ("samples.png", "curves.png"):
        png = (out / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
    logs = list((out / "torchrun_logs").rglob("stdout.log"))
    assert len(logs) == 2, logs


def _manifests():
    docs = []
    for name in ("configmap.yaml", "job.yaml"):
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text())
                 if d]
    data = next(d["data"] for d in docs if d["kind"] == "ConfigMap")
    jobs = {d["spec"].get("completionMode", "NonIndexed"): d
            for d in docs if d["kind"] == "Job"}
    return data, jobs["NonIndexed"], jobs["Indexed"]


def _pod_env(data, container, server, **extra):
    env = dict(os.environ)
    env.update(data)
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    env.update(GAMEOPT_SERVERS=server, GAMEOPT_STEPS="4",
               PYTHONPATH=str(REPO / "client" / "python"),
               PATH="/usr/bin:" + env.get("PATH", ""), **extra)
    return env


@needs_data
def test_indexed_job_commands_play_a_session_to_done(server):
    """The create Job's and each completion index's command, as Kubernetes
    would run them (the ConfigMap's variables, JOB_COMPLETION_INDEX), with
    the server's address and 4 steps."""
    data, create, workers = _manifests()
    k = workers["spec"]["completions"]
    container = create["spec"]["template"]["spec"]["containers"][0]
    subprocess.run(container["command"], check=True, timeout=120,
                   env=_pod_env(data, container, server.address))
    container = workers["spec"]["template"]["spec"]["containers"][0]
    pods = [subprocess.Popen(
        container["command"], stdout=subprocess.PIPE, text=True,
        env=_pod_env(data, container, server.address,
                     JOB_COMPLETION_INDEX=str(i))) for i in range(k)]
    outputs = [p.communicate(timeout=300)[0] for p in pods]
    assert [p.returncode for p in pods] == [0] * k, outputs
    for i, output in enumerate(outputs):
        assert f"index={i} shards={k} shard_images={60000 // k}" in output
    with gameopt.Client(server.address) as client:
        sessions = client.list_sessions()
        assert len(sessions) == 1 and sessions[0].done
        assert sessions[0].step == 4
        assert sessions[0].config.name == data["GAMEOPT_SESSION_NAME"]


def test_classifier_cache_waits_for_the_process_that_trains_it(tmp_path):
    """While PATH.lock exists another process is training PATH: load waits
    for it instead of training a second copy."""
    import threading
    import torch
    from gameopt.fashion_metrics import load_or_train_classifier
    from gameopt.fashion_models import Classifier
    path = tmp_path / "clf.pt"
    lock = tmp_path / "clf.pt.lock"
    lock.touch()
    model = Classifier(4)

    def finish():
        torch.save({"width": 4, "feature_dim": model.feature_dim,
                    "state": model.state_dict(), "test_accuracy": 0.5}, path)
        lock.unlink()

    timer = threading.Timer(0.5, finish)
    timer.start()
    loaded, accuracy = load_or_train_classifier(str(path), log=None)
    timer.join()
    assert accuracy == 0.5 and loaded.width == 4


def test_a_lock_left_by_a_dead_process_is_removed(tmp_path):
    from gameopt.fashion_metrics import _lock_holder_alive
    lock = tmp_path / "clf.pt.lock"
    done = subprocess.run([sys.executable, "-c", "import os; "
                           "print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    lock.write_text(done.stdout)  # that process has exited
    assert not _lock_holder_alive(str(lock))
    lock.write_text(f"{os.getpid()}\n")
    assert _lock_holder_alive(str(lock))


def _study():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import study  # noqa: PLC0415 (examples/fashion/study.py)
    finally:
        sys.path.remove(str(EXAMPLES))
    return study


def test_study_summarizes_seeds_and_averages_their_curves():
    study = _study()

    def run_of(label, fd, modes, workers=1):
        curve = [dict(step=0, seconds=0.0, fd=400.0, modes=5),
                 dict(step=10, seconds=1.0, fd=fd, modes=modes)]
        return dict(label=label, config=dict(workers=workers), step_ms=10.0,
                    fd=fd, modes=modes, kl=1.0, curve=curve)

    results = [run_of("a-s1", 100.0, 10), run_of("a-s2", 120.0, 30),
               run_of("a-s3", 110.0, 20), run_of("b", 50.0, 7)]
    lines = study.seed_summary(results)
    rows = [line for line in lines if line.startswith("| a |")]
    # Mean 110, sample standard deviation 10; modes 20 ± 10.
    assert rows == ["| a | 1 | 3 | 10 ± 0 | 110.0 ± 10.0 | 20 ± 10 | "
                    "1.00 ± 0.00 |"]
    assert not any(line.startswith("| b |") for line in lines)
    curves = study.plotted_curves(results)
    assert set(curves) == {"a (mean of 3)", "b"}
    assert curves["a (mean of 3)"][1] == dict(step=10.0, seconds=1.0,
                                              fd=110.0, modes=20.0)
    assert study.seed_summary([run_of("b", 50.0, 7)]) == []
