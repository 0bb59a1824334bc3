"""gameopt.torch's exact products on the MoG GAN of the PyTorch example
against the C++ game (client/games/mog_gan.h) and finite differences."""

import math
import threading

import numpy as np
import pytest
import torch

import gameopt
import mog_gan  # client/python/examples/mog_gan.py
from gameopt.sampling import RandomStream
from gameopt.torch import TorchGame
from testutil import only_session, play_cpp, run

torch.set_num_threads(1)
BATCH = 64
# Exact products in float64 by two different programs (Eigen forward-over-
# reverse vs PyTorch double backprop): they differ by summation order only.
PRODUCT_RTOL = 1e-10
# Central differences with step 1e-5: truncation O(h^2 |xi'''|) plus
# rounding O(eps / h) ~ 1e-11, relative to products of order 1.
FD_STEP = 1e-5
FD_RTOL = 1e-6


def relative_error(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def read(path, shape=None):
    values = np.fromfile(path, dtype="<f8")
    return values if shape is None else values.reshape(shape)


@pytest.fixture
def products(helper_binary, workdir):
    """The C++ game's minibatch and products at x (PyTorch's default init)
    for random probes w and u."""
    game = mog_gan.make_game(torch.float64, BATCH, seed=3)
    rng = np.random.default_rng(0)
    x = game.get_flat()
    w = rng.standard_normal(x.size)
    u = rng.standard_normal(x.size)
    for name, values in (("x", x), ("w", w), ("u", u)):
        values.astype("<f8").tofile(workdir / f"{name}.bin")
    run([helper_binary, "mog-products", f"--dir={workdir}", "--seed=5",
         f"--batch={BATCH}"])
    batch = (torch.from_numpy(read(workdir / "z.bin", (BATCH, 16))),
             torch.from_numpy(read(workdir / "real.bin", (BATCH, 2))))
    cpp = {name: read(workdir / f"{name}.bin")
           for name in ("gradient", "vjp", "jvp")}
    return game, x, w, u, batch, cpp


def test_layout_is_the_cpp_games(products):
    game = products[0]
    names = [(p.name, t.name, t.shape) for p in game.players()
             for t in p.tensors]
    assert names[:2] == [("generator", "w0", (16, 16)),
                         ("generator", "b0", (16,))]
    assert names[9] == ("generator", "b4", (2,))
    assert names[10] == ("discriminator", "w0", (16, 2))
    assert names[-1] == ("discriminator", "b4", (1,))
    assert game.layout.dimension == 1122 + 881  # generator + discriminator


def test_products_match_the_cpp_game(products):
    game, x, w, u, batch, cpp = products
    game.set_flat(x)
    errors = {
        "gradient": relative_error(game.gradient_on(batch), cpp["gradient"]),
        "vjp": relative_error(game.vjp_on(batch, w), cpp["vjp"]),
        "jvp": relative_error(game.jvp_on(batch, u), cpp["jvp"]),
    }
    print("relative errors vs C++:", errors)
    assert max(errors.values()) < PRODUCT_RTOL, errors


def test_products_match_finite_differences(products):
    game, x, w, u, batch, _ = products

    def xi(point):
        game.set_flat(point)
        return game.gradient_on(batch)

    game.set_flat(x)
    jvp = game.jvp_on(batch, u)
    vjp = game.vjp_on(batch, w)
    fd_jvp = (xi(x + FD_STEP * u) - xi(x - FD_STEP * u)) / (2 * FD_STEP)
    print("relative error of J u vs finite differences:",
          relative_error(jvp, fd_jvp))
    assert relative_error(jvp, fd_jvp) < FD_RTOL
    # J^T w against finite differences along a few directions v:
    # <J^T w, v> = <w, J v>.
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = rng.standard_normal(x.size)
        fd = (xi(x + FD_STEP * v) - xi(x - FD_STEP * v)) / (2 * FD_STEP)
        assert abs(vjp @ v - w @ fd) < FD_RTOL * np.linalg.norm(vjp) * \
            np.linalg.norm(v)


def test_unreached_and_frozen_parameters_count_as_zeros():
    """A parameter no loss reaches, and one that does not require grad, are
    in the layout with zero gradients and products."""
    torch.manual_seed(0)
    a = torch.nn.Linear(1, 1, bias=False).double()
    b = torch.nn.Linear(1, 1, bias=False).double()
    a.unused = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    b.frozen = torch.nn.Parameter(torch.ones(3, dtype=torch.float64),
                                  requires_grad=False)
    # l_a = x*y = -l_b with x = a.weight, y = b.weight: the bilinear game.
    game = TorchGame([a, b], [lambda _: (a.weight * b.weight).sum(),
                              lambda _: -(a.weight * b.weight).sum()],
                     sample_batch=lambda seed: None)
    assert [t.name for p in game.players() for t in p.tensors] == \
        ["weight", "unused", "weight", "frozen"]
    game.draw_minibatches(1, 0)
    x = np.array([0.5, 7, 7, -2, 9, 9, 9])
    w = np.arange(1.0, 8.0)
    bilinear = gameopt.BilinearGame()
    pick = [0, 3]  # where x and y live
    gradient = game.gradient(x, 0)
    vjp = game.vjp(x, w, 0)
    jvp = game.jvp(x, w, 0)
    np.testing.assert_allclose(gradient[pick], bilinear.gradient(x[pick], 0))
    np.testing.assert_allclose(vjp[pick], bilinear.vjp(x, w[pick], 0))
    np.testing.assert_allclose(jvp[pick], bilinear.jvp(x, w[pick], 0))
    others = [1, 2, 4, 5, 6]
    for values in (gradient, vjp, jvp):
        assert values.shape == (7,)
        np.testing.assert_array_equal(values[others], 0)


def cpp_initial_parameters(seed=1):
    """MogGan::InitialParameters: every layer's w and b ~ U(-1/sqrt(in),
    1/sqrt(in)) from one RandomStream, generator first."""
    random = RandomStream(seed)
    values = []
    for inputs, outputs in ((16, 2), (2, 1)):
        for layer in range(5):
            fan_in = inputs if layer == 0 else 16
            fan_out = outputs if layer == 4 else 16
            bound = 1.0 / math.sqrt(fan_in)
            values += [random.uniform(-bound, bound)
                       for _ in range(fan_out * (fan_in + 1))]
    return np.array(values)


def cpp_minibatch(seed, batch=BATCH):
    """MogGan::DrawMinibatches' slot: z column by column, then the real
    samples, sample j from mode j % 8 (the C++ game's exact draws)."""
    random = RandomStream(seed)
    z = np.array([random.gaussian() for _ in range(batch * 16)])
    centers = [(math.cos(6.283185307179586476925286766559 * k / 8),
                math.sin(6.283185307179586476925286766559 * k / 8))
               for k in range(8)]
    real = np.array([[centers[j % 8][i] + 0.01 * random.gaussian()
                      for i in range(2)] for j in range(batch)])
    return torch.from_numpy(z.reshape(batch, 16)), torch.from_numpy(real)


def test_torch_workers_match_cpp_workers_in_a_session(
        server, client, client_binary, workdir):
    """Two PyTorch workers drawing the C++ game's minibatches reach the C++
    workers' parameters after 10 ConOpt/RMSProp steps."""
    steps = 10
    play_cpp(client_binary, server.address, workdir, "--game=mog",
             f"--batch={BATCH}", "--algorithm=conopt", "--gamma=10",
             "--workers=2", f"--steps={steps}")
    cpp_session = only_session(client)

    def torch_game():
        game = mog_gan.make_game(torch.float64, BATCH)
        game.sample_batch = cpp_minibatch
        return game

    config = gameopt.build_session_config(
        torch_game(), cpp_initial_parameters(), name="mog",
        algorithm="conopt", optimizer="rmsprop", learning_rate=1e-4,
        gamma=10.0, lambda0=1.0, workers=2, max_steps=steps, seed=1,
        float64=True)
    session_id = client.create_session(config)
    assert client.get_session(session_id).config == \
        client.get_session(cpp_session).config
    errors = []

    def work(i):
        try:
            gameopt.Worker(server.address, session_id, torch_game(),
                           name=f"torch-{i}").run()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    players = torch_game().players()
    mine = client.get_parameters(session_id, players).flat
    cpp = client.get_parameters(cpp_session, players).flat
    start = cpp_initial_parameters()
    print("max |torch - cpp| =", np.abs(mine - cpp).max(),
          " max |moved| =", np.abs(cpp - start).max())
    assert np.abs(cpp - start).max() > 1e-4  # the parameters moved
    np.testing.assert_allclose(mine, cpp, rtol=0, atol=1e-12)


def test_loss_gradient_is_xi_on_its_block_and_the_losses_slope_elsewhere():
    """TorchGame.loss_gradient (LOLA's and SOS's cross gradients): block i
    of grad_x l_i is xi_i; along a direction v in the other player's block,
    <grad_x l_i, v> is the central difference of l_i."""
    game = mog_gan.make_game(torch.float64, BATCH, seed=3)
    game.draw_minibatches(1, 11)
    x = game.get_flat()
    xi = game.gradient(x, 0)
    sizes = [p.size for p in game.players()]
    offsets = [0, sizes[0]]
    rng = np.random.default_rng(1)
    for i in range(2):
        g = game.loss_gradient(x, i, 0)
        own = slice(offsets[i], offsets[i] + sizes[i])
        assert relative_error(g[own], xi[own]) < PRODUCT_RTOL
        j = 1 - i
        v = np.zeros_like(x)
        v[offsets[j]:offsets[j] + sizes[j]] = rng.standard_normal(sizes[j])

        def loss(point):
            game.set_flat(point)
            return game.losses(game.minibatch(0))[i].item()

        slope = (loss(x + FD_STEP * v) - loss(x - FD_STEP * v)) / (2 * FD_STEP)
        game.set_flat(x)
        assert abs(g @ v - slope) <= FD_RTOL * max(1.0, abs(slope))
