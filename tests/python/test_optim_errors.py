"""Python-side errors that tell the caller what to fix: option names with
suggestions, ignored options, missing losses by player, layout mismatches by
shape, gRPC failures as `CODE: message`."""

import warnings

import grpc
import pytest
import torch

import gameopt
from gameopt.optim import GameOptimizer
from gameopt_games_torch import Feed, make_batches, make_players


def players():
    g, d = make_players()
    return {"generator": g, "discriminator": d}


def test_unknown_option_names_the_closest(server):
    with pytest.raises(TypeError, match=r"unknown session option "
                       r"'learnig_rate'; did you mean 'learning_rate'\?"):
        GameOptimizer(server, players(), learnig_rate=0.1)
    with pytest.raises(TypeError, match=r"did you mean 'gamma'"):
        gameopt.build_session_config(gameopt.BilinearGame(), gamam=1.0)
    with pytest.raises(ValueError, match=r"unknown algorithm 'conop'; did "
                       r"you mean 'conopt'\?"):
        GameOptimizer(server, players(), algorithm="conop")
    with pytest.raises(TypeError, match=r"parameter group key 'lrate'"):
        g, d = make_players()
        GameOptimizer(server, [{"params": g.parameters(), "lrate": 1},
                               {"params": d.parameters()}])


def test_torch_spelling_lr_is_accepted(server):
    config = gameopt.build_session_config(gameopt.BilinearGame(), lr=0.25)
    assert config.players[0].optimizer.learning_rate == 0.25
    opt = GameOptimizer(server, players(), lr=0.5)
    assert opt.options.learning_rate == 0.5
    opt.close()


def test_options_the_algorithm_ignores_are_refused(server):
    with pytest.raises(ValueError, match=r"'gamma' is read only by "
                       r"algorithm conopt \(algorithm 'simgd'"):
        GameOptimizer(server, players(), algorithm="simgd", gamma=10.0)
    with pytest.raises(ValueError, match=r"'rmsprop_preset' is read only "
                       r"by optimizer rmsprop"):
        GameOptimizer(server, players(), optimizer="adam",
                      rmsprop_preset="tf1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gameopt.build_session_config(gameopt.BilinearGame(),
                                     algorithm="extragradient", lambda0=2.0)
    assert any("'lambda0' is read only by algorithm sga" in str(w.message)
               for w in caught)


def test_missing_losses_name_the_players(server):
    opt = GameOptimizer(server, players(), max_steps=1)
    with pytest.raises(KeyError, match=r"no loss for player\(s\) "
                       r"discriminator \(it returned gen, generator; "
                       r"players: generator, discriminator\)"):
        opt.step(lambda: {"generator": torch.ones((), requires_grad=True),
                          "gen": 1.0})
    with pytest.raises(TypeError, match=r"must return a dict"):
        opt.step(lambda: torch.ones(()))
    opt.close()


def test_layout_mismatch_names_the_shapes(server):
    GameOptimizer(server, players(), session="fixed", max_steps=1).close()
    torch.manual_seed(0)
    wide = torch.nn.Sequential(torch.nn.Linear(4, 9), torch.nn.Tanh(),
                               torch.nn.Linear(9, 2))
    _, d = make_players()
    with pytest.raises(gameopt.LayoutError, match=r"'generator/0.weight': "
                       r"session shape \(8, 4\), model shape \(9, 4\)"):
        GameOptimizer(server, {"generator": wide, "discriminator": d},
                      session="fixed", create=False)
    with pytest.raises(gameopt.LayoutError, match=r"player 'generatr' is "
                       r"not in the session; did you mean 'generator'"):
        GameOptimizer(server, {"generatr": wide, "discriminator": d},
                      session="fixed", create=False)


def test_wire_tensor_of_the_wrong_shape_names_both_shapes():
    from gameopt.torch_codec import TensorTable
    p = torch.zeros(2, 3)
    table = TensorTable([("a", ["w"], [p])])
    vector = gameopt.pb.Vector()
    vector.players.add(player="a").tensors.add(
        name="w", dtype=gameopt.pb.FLOAT32, shape=[3, 2],
        data=bytes(4 * 6))
    with pytest.raises(gameopt.LayoutError, match=r"tensor 'a/w': the "
                       r"server's is \(3, 2\) float32, the model's "
                       r"parameter is \(2, 3\)"):
        table.load(vector)


def test_grpc_errors_print_as_code_and_message(client):
    with pytest.raises(gameopt.Error) as caught:
        client.get_session("no-such-session")
    error = caught.value
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert str(error).startswith("NOT_FOUND: ")
    assert "debug_error_string" not in str(error)
    assert "no-such-session" in error.message


def test_a_finished_session_raises_session_done(server):
    g, d = make_players()
    opt = GameOptimizer(server, {"generator": g, "discriminator": d},
                        max_steps=1)
    feed = Feed(g, d, make_batches(1))
    opt.step(feed)
    assert opt.done
    with pytest.raises(gameopt.SessionDone):
        opt.step(feed)
    opt.close()


def test_seed_driven_worker_layout_errors_name_the_shapes():
    layout = gameopt.FlatLayout([gameopt.PlayerSpec("a", [("w", (2, 3))])])
    vector = gameopt.pb.Vector()
    vector.players.add(player="a").tensors.add(
        name="w", dtype=gameopt.pb.FLOAT64, shape=[4, 3], data=bytes(8 * 12))
    with pytest.raises(gameopt.LayoutError, match=r"tensor 'a/w': the "
                       r"server's is \(4, 3\) float64, the game's \(2, 3\)"):
        gameopt.decode_vector(vector, layout)


def test_workers_raise_gameopt_errors_too(server):
    with pytest.raises(gameopt.Error, match=r"^NOT_FOUND: "):
        gameopt.Worker(server.address, "missing",
                       gameopt.BilinearGame()).run()
    from gameopt.torch import GameOptimizer as FromTorch
    assert FromTorch is GameOptimizer is gameopt.GameOptimizer
