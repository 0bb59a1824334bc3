"""gameopt.GameOptimizer: the torch.optim-shaped API against a real server.

The ConOpt run in float64 equals an in-process autograd ConOpt loop (plain
torch, written here independently) step by step; every algorithm calls the
closure exactly as often as it needs points (no forward pass twice), and
leaves the session's parameters in the modules."""

import threading
import time

import numpy as np
import pytest
import torch

import gameopt
from gameopt.optim import GameOptimizer
from gameopt.optim_autograd import graph_products, own_gradients
from gameopt_games_torch import Feed, losses, make_batches, make_players

torch.set_num_threads(1)
# One float64 worker and the in-process loop evaluate the same formulas on
# the same minibatches; only summation order may differ (~1e-16 per step).
STEP_RTOL = 1e-10
STEPS = 8


def flat(*modules):
    return torch.cat([p.detach().reshape(-1) for m in modules
                      for p in m.parameters()])


def in_process_conopt(g, d, batches, lr, gamma, steps):
    """ConOpt by hand: x <- x - lr (xi + gamma grad(|xi|^2 / 2))."""
    trajectory = []
    params_g, params_d = list(g.parameters()), list(d.parameters())
    for t in range(steps):
        g_loss, d_loss = losses(g, d, batches[t])
        xi = (list(torch.autograd.grad(g_loss, params_g, create_graph=True))
              + list(torch.autograd.grad(d_loss, params_d,
                                         create_graph=True)))
        half_norm = 0.5 * sum((v * v).sum() for v in xi)
        correction = torch.autograd.grad(half_norm, params_g + params_d)
        with torch.no_grad():
            for p, v, c in zip(params_g + params_d, xi, correction):
                p -= lr * (v + gamma * c)
        trajectory.append(flat(g, d).clone())
    return trajectory


@pytest.mark.parametrize("options,rounds_per_step", [
    ({}, 2),  # pooled: a gradient round, then a products round
    ({"estimator": "local", "fuse_local_products": True}, 1),
    # The bias meter's fused J^T xi_k leaves the step and its rounds as
    # they were (K = 1 here: no reading).
    ({"bias_meter": True}, 2),
], ids=["pooled", "local-fused", "bias-meter"])
def test_float64_conopt_equals_in_process_autograd(server, options,
                                                   rounds_per_step):
    batches = make_batches(STEPS, dtype=torch.float64)
    g, d = make_players(torch.float64)
    g_ref, d_ref = make_players(torch.float64)
    reference = in_process_conopt(g_ref, d_ref, batches, lr=0.05, gamma=2.0,
                                  steps=STEPS)
    feed = Feed(g, d, batches)
    with GameOptimizer(server, {"generator": g, "discriminator": d},
                       algorithm="conopt", lr=0.05, gamma=2.0,
                       max_steps=STEPS, **options) as opt:
        assert opt.options.float64  # from the modules' dtype
        for t in range(STEPS):
            opt.step(feed)
            x = flat(g, d)
            error = float((x - reference[t]).norm() / reference[t].norm())
            print("step", t, "relative error", error)
            assert error < STEP_RTOL, (t, error)
        assert opt.done
        assert opt.rounds == rounds_per_step * STEPS
    assert feed.calls == STEPS  # the products reused the gradient's graph


def test_bias_meter_reads_from_the_minibatch_graphs(server):
    """Two samples per step: the fused round's J_k^T xi_k and the
    products round share each sample's graph (no second closure call), and
    the status reports pooled minus leave-one-out J^T xi."""
    g, d = make_players(torch.float64)
    feed = Feed(g, d, make_batches(2 * STEPS, dtype=torch.float64))
    with GameOptimizer(server, {"generator": g, "discriminator": d},
                       algorithm="conopt", lr=0.05, gamma=2.0,
                       max_steps=STEPS, samples_per_worker=2,
                       bias_meter=True) as opt:
        while not opt.done:
            opt.step(feed)
        diagnostics = opt.status().diagnostics
    assert feed.calls == 2 * STEPS
    assert diagnostics.has_bias_meter
    assert 0 < diagnostics.relative_bias < float("inf")
    assert diagnostics.relative_bias == pytest.approx(
        diagnostics.bias_norm / diagnostics.pooled_jt_xi_norm, rel=1e-12)


def test_losses_and_scalars_reach_the_server(server):
    g, d = make_players()
    feed = Feed(g, d, make_batches(2))
    with GameOptimizer(server, {"generator": g, "discriminator": d},
                       max_steps=2) as opt:
        opt.step(feed)
        last = opt.step(feed)
        scalars = {s.name: s.value for s in opt.status().scalars}
    assert set(scalars) == {"loss/generator", "loss/discriminator",
                            "fake_mean"}
    assert scalars["loss/generator"] == pytest.approx(last["generator"])
    assert scalars["fake_mean"] == pytest.approx(last["fake_mean"])


def run(server, algorithm, steps=4, **options):
    g, d = make_players()
    feed = Feed(g, d, make_batches(8))
    with GameOptimizer(server, {"generator": g, "discriminator": d},
                       algorithm=algorithm, lr=0.05, max_steps=steps,
                       **options) as opt:
        first = flat(g, d).clone()
        reports = []
        while not opt.done:
            reports.append(opt.step(feed))
        x = opt.client.get_parameters(opt.session_id).tensors()
        status = opt.status()
    served = torch.cat([torch.from_numpy(x[name][t]).reshape(-1)
                        for name, m in (("generator", g),
                                        ("discriminator", d))
                        for t, _ in m.named_parameters()]).float()
    assert torch.equal(flat(g, d), served)  # the modules hold the result
    assert not torch.equal(first, served)
    assert status.step == steps
    return feed.calls, reports


@pytest.mark.parametrize("algorithm,options,calls_per_step", [
    ("simgd", {}, 1),
    ("conopt", {"gamma": 1.0}, 1),
    ("conopt", {"gamma": 1.0, "estimator": "unbiased",
                "samples_per_worker": 2}, 2),
    ("sga", {"lambda0": 0.5}, 1),
    ("sga", {"estimator": "local", "fuse_local_products": True}, 1),
    ("extragradient", {}, 2),
    ("altgd", {"altgd_order": [("discriminator", 2), ("generator", 1)]}, 3),
    ("altgd", {"optimizer": "momentum", "momentum": -0.5}, 2),
    ("optimistic_adam", {"optimizer": "adam"}, 1),
    ("extrapolation_from_the_past", {}, 1),
    # Both JVP rounds differentiate the gradient round's graph again.
    ("lead", {"optimizer": "momentum", "momentum": 0.3, "lead_alpha": 0.5},
     1),
    ("cgd", {"cgd_max_iterations": 5}, 1),
    ("acgd", {"cgd_max_iterations": 5}, 1),
    ("shgd", {"estimator": "unbiased", "samples_per_worker": 2}, 2),
])
def test_every_algorithm_calls_the_closure_once_per_point(
        server, algorithm, options, calls_per_step):
    calls, reports = run(server, algorithm, **options)
    assert calls == 4 * calls_per_step
    assert set(reports[0]) == {"generator", "discriminator", "fake_mean"}
    assert all(np.isfinite(v) for r in reports for v in r.values())


def test_parameter_groups_are_players_with_their_own_rates(server):
    g, d = make_players()
    feed = Feed(g, d, make_batches(4))
    with GameOptimizer(server, [
            {"params": g.parameters(), "name": "generator", "lr": 0.01},
            {"params": d, "name": "discriminator", "lr": 0.1}],
            max_steps=1) as opt:
        config = opt.status().config
        opt.step(feed)
    assert [p.name for p in config.players] == ["generator",
                                                "discriminator"]
    assert [p.optimizer.learning_rate for p in config.players] == \
        pytest.approx([0.01, 0.1])
    # A parameter list gets tensor names p0, p1, ...; a module its own.
    assert [t.name for t in config.players[0].tensors][:2] == ["p0", "p1"]
    assert config.players[1].tensors[0].name == "0.weight"
    assert config.dtype == gameopt.pb.FLOAT32


def full_jacobian(g, d, batch):
    """d xi / d x of the GAN at the modules' parameters, by
    torch.autograd.functional.jacobian (float64)."""
    params = list(g.parameters()) + list(d.parameters())
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    n_g = len(list(g.parameters()))
    x0 = flat(g, d)

    def xi_of(x):
        chunks = torch.split(x, sizes)
        values = [c.view(s) for c, s in zip(chunks, shapes)]
        g_params = dict(zip([n for n, _ in g.named_parameters()],
                            values[:n_g]))
        d_params = dict(zip([n for n, _ in d.named_parameters()],
                            values[n_g:]))
        call = torch.nn.utils.stateless.functional_call
        z, real = batch
        fake = call(g, g_params, (z,))
        d_loss = (torch.nn.functional.softplus(-call(d, d_params, (real,)))
                  .mean() + torch.nn.functional.softplus(
                      call(d, d_params, (fake,))).mean())
        g_loss = torch.nn.functional.softplus(
            -call(d, d_params, (fake,))).mean()
        gx = torch.autograd.grad(g_loss, values[:n_g], create_graph=True)
        dx = torch.autograd.grad(d_loss, values[n_g:], create_graph=True)
        return torch.cat([v.reshape(-1) for v in gx + dx])

    return torch.autograd.functional.jacobian(xi_of, x0)


def test_products_on_the_kept_graph_are_the_jacobians(server):
    """J^T w and J w from the kept graph against the full Jacobian of xi
    (torch.autograd.functional.jacobian, float64)."""
    g, d = make_players(torch.float64)
    batch = make_batches(1, dtype=torch.float64)[0]
    opt = GameOptimizer(server, {"generator": g, "discriminator": d},
                        max_steps=1)
    params = list(g.parameters()) + list(d.parameters())
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    x0 = flat(g, d)
    jacobian = full_jacobian(g, d, batch)
    w = torch.randn(x0.numel(), dtype=torch.float64,
                    generator=torch.Generator().manual_seed(2))
    g_loss, d_loss = losses(g, d, batch)
    grads = own_gradients(opt._players,  # noqa: SLF001 (test)
                          {"generator": g_loss, "discriminator": d_loss},
                          {"generator", "discriminator"}, True)
    w_list = [c.view(s) for c, s in zip(torch.split(w, sizes), shapes)]
    jtw, jw = graph_products(params, grads, w_list, True, True)
    jtw_only, _ = graph_products(params, grads, w_list, True, False)
    as_flat = lambda ts: torch.cat([t.reshape(-1) for t in ts])  # noqa
    assert torch.allclose(as_flat(jtw), jacobian.T @ w, rtol=1e-12,
                          atol=1e-14)
    assert torch.allclose(as_flat(jtw_only), jacobian.T @ w, rtol=1e-12,
                          atol=1e-14)
    assert torch.allclose(as_flat(jw), jacobian @ w, rtol=1e-12, atol=1e-14)
    opt.close()


def test_batchnorm_buffers_stay_local_and_follow_the_closure(server):
    """Buffers are not players: the session holds only parameters, and the
    running statistics change once per closure call (train mode)."""
    g, d = make_players(batchnorm=True)
    bn = d[1]
    bn.momentum = None  # cumulative average: num_batches_tracked counts
    feed = Feed(g, d, make_batches(6))
    with GameOptimizer(server, {"generator": g, "discriminator": d},
                       algorithm="extragradient", lr=0.05,
                       max_steps=3) as opt:
        names = [t.name for t in opt.status().config.players[1].tensors]
        while not opt.done:
            opt.step(feed)
    assert "1.running_mean" not in names and "1.weight" in names
    # Each closure call runs d on real and on fake data (3 forward passes).
    assert feed.calls == 6
    assert int(bn.num_batches_tracked) == 3 * feed.calls
    assert torch.isfinite(bn.running_mean).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_modules_on_a_cuda_device(server):
    g, d = make_players()
    g, d = g.cuda(), d.cuda()
    batches = [(z.cuda(), r.cuda()) for z, r in make_batches(4)]
    feed = Feed(g, d, batches)
    with GameOptimizer(server, {"generator": g, "discriminator": d},
                       algorithm="sga", lr=0.05, max_steps=3) as opt:
        while not opt.done:
            opt.step(feed)
        params = opt.client.get_parameters(opt.session_id).tensors()
    assert all(p.is_cuda for p in g.parameters())
    served = torch.cat([torch.from_numpy(params[name][t]).reshape(-1)
                        for name, m in (("generator", g),
                                        ("discriminator", d))
                        for t, _ in m.named_parameters()]).float()
    assert torch.equal(flat(g, d).cpu(), served)


def test_spectrum_rounds_reuse_the_gradient_graph(server):
    """EstimateSpectrum while the loop steps: its gradient round calls the
    closure once (and the server may re-ask the interrupted step's
    gradient), then every J v round differentiates that graph."""
    g, d = make_players(torch.float64)
    # One minibatch for every call: J at the estimate's point is known.
    feed = Feed(g, d, make_batches(1, dtype=torch.float64), record=True)
    with GameOptimizer(server, {"generator": g, "discriminator": d},
                       algorithm="simgd", lr=0.05, max_steps=6) as opt:
        opt.step(feed)
        result = {}
        thread = threading.Thread(target=lambda: result.update(
            spectrum=opt.client.estimate_spectrum(opt.session_id, k=2)))
        thread.start()
        wait = time.monotonic() + 30
        while opt.status().phase_label.find("spectrum") < 0 and \
                thread.is_alive() and time.monotonic() < wait:
            time.sleep(0.02)
        while not opt.done:
            opt.step(feed)
        thread.join(timeout=60)
    spectrum = result["spectrum"]
    assert spectrum.rounds > 10
    assert feed.calls <= 6 + 2  # not once per J v round
    # Closure call s (s = spectrum.step) is at the estimate's point.
    s = spectrum.step
    g.load_state_dict(feed.points[s][0])
    d.load_state_dict(feed.points[s][1])
    eigenvalues = torch.linalg.eigvals(full_jacobian(g, d, feed.batches[0]))
    assert spectrum.converged
    assert abs(complex(spectrum.largest_modulus[0].re,
                       spectrum.largest_modulus[0].im)) == pytest.approx(
        float(eigenvalues.abs().max()), rel=1e-6)


def test_seed_driven_worker_answers_fused_products(server, client):
    """gameopt.Worker + TorchGame: LOCAL fused ConOpt (one round a step)
    lands where pooled ConOpt does with one worker (the same estimator for
    K = 1), on the same minibatches."""
    from gameopt.torch import TorchGame

    def game():
        g, d = make_players(torch.float64)
        # Task seeds mix in the round number, which fusing changes: draw
        # the same sequence of minibatches in both runs instead.
        batches = iter(make_batches(5, dtype=torch.float64))

        def sample(seed):
            return next(batches)

        return TorchGame({"generator": g, "discriminator": d},
                         losses=lambda batch: dict(zip(
                             ("generator", "discriminator"),
                             losses(g, d, batch))),
                         sample_batch=sample)

    results = {}
    for label, options in (("pooled", {}), ("fused", {
            "estimator": "local", "fuse_local_products": True})):
        reference = game()
        session_id = client.create_session(gameopt.build_session_config(
            reference, algorithm="conopt", gamma=1.0, learning_rate=0.05,
            max_steps=5, float64=True, **options))
        gameopt.Worker(server.address, session_id, game()).run()
        results[label] = (client.get_parameters(
            session_id, reference.players()).flat,
            client.get_session(session_id).round)
    np.testing.assert_allclose(results["fused"][0], results["pooled"][0],
                               rtol=STEP_RTOL, atol=1e-14)
    assert results["fused"][1] <= results["pooled"][1] // 2 + 1, results


def test_sga_fused_local_equals_pooled_with_one_worker(server):
    """For K = 1 the LOCAL and POOLED estimators are the same numbers: the
    fused path (J^T xi and J xi with the gradient) lands where the two-round
    path does, in float64."""
    trajectories = {}
    for label, options in (("pooled", {}), ("fused", {
            "estimator": "local", "fuse_local_products": True})):
        g, d = make_players(torch.float64)
        feed = Feed(g, d, make_batches(STEPS, dtype=torch.float64))
        with GameOptimizer(server, {"generator": g, "discriminator": d},
                           algorithm="sga", lr=0.05, lambda0=0.5,
                           max_steps=STEPS, **options) as opt:
            trajectories[label] = []
            while not opt.done:
                opt.step(feed)
                trajectories[label].append(flat(g, d).clone())
    for a, b in zip(trajectories["fused"], trajectories["pooled"]):
        assert float((a - b).norm() / b.norm()) < STEP_RTOL


class _Scalar(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.v = torch.nn.Parameter(torch.tensor([value],
                                                 dtype=torch.float64))


def test_cgd_differentiates_the_kept_graph_in_every_krylov_round(server):
    """CGD on f = x y for x, -f for y (conjugate gradient): each step is a
    rotation scaled by 1 / sqrt(1 + eta^2) (the closed form of the CGD step
    on this game), so from (1, 1) the distance after N steps of eta 0.2 is
    sqrt(2) 1.04^(-N/2). A step takes 5 rounds, then 7 (gradient, rhs, warm
    start 2, one Krylov iteration 2, response), and the closure runs once
    per step: every products round reuses the gradient's graph."""
    x, y = _Scalar(1.0), _Scalar(1.0)
    calls = [0]

    def closure():
        calls[0] += 1
        f = (x.v * y.v).sum()
        return {"x": f, "y": -f}

    steps = 20
    with GameOptimizer(server, {"x": x, "y": y}, algorithm="cgd", lr=0.2,
                       cgd_zero_sum=True, cgd_tolerance=1e-12,
                       max_steps=steps) as opt:
        for _ in range(steps):
            opt.step(closure)
        assert opt.rounds == 5 + 7 * (steps - 1)
        status = opt.status()
        assert status.cgd_rounds == 6 and status.cgd_iterations == 1
    distance = float(torch.cat([x.v, y.v]).detach().norm())
    assert abs(distance - 2 ** 0.5 * 1.04 ** (-steps / 2)) < 1e-9
    assert calls[0] == steps
