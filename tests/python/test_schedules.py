"""gameopt's learning-rate schedules: torch.optim.lr_scheduler's values,
carried in OptimizerConfig.schedule per player, applied by the server."""

import pytest
import torch

import gameopt
from gameopt.optim import GameOptimizer
from gameopt_games_torch import Feed, make_batches, make_players

# Closed forms vs torch's recursive updates, in float64.
LR_RTOL = 1e-12

CASES = [
    (gameopt.StepLR(3, gamma=0.5),
     lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.5)),
    (gameopt.MultiStepLR([2, 5], gamma=0.1),
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], gamma=0.1)),
    (gameopt.ExponentialLR(0.9),
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
    (gameopt.CosineAnnealingLR(T_max=6, eta_min=0.01),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 6, 0.01)),
    (gameopt.LinearLR(0.25, 1.0, total_iters=4),
     lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.25, 1.0, 4)),
]


@pytest.mark.parametrize("ours,theirs", CASES,
                         ids=[type(c[0]).__name__ for c in CASES])
def test_closed_forms_follow_torch_lr_scheduler(ours, theirs):
    lr0 = 0.1
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    scheduler = theirs(optimizer)
    for t in range(10):  # 0..6 for cosine: torch's recursion is its period
        if isinstance(ours, gameopt.CosineAnnealingLR) and t > 6:
            break
        assert ours.lr(lr0, t) == pytest.approx(
            optimizer.param_groups[0]["lr"], rel=LR_RTOL), t
        optimizer.step()
        scheduler.step()


def test_bad_schedule_arguments_are_refused():
    with pytest.raises(ValueError, match="step_size must be an integer"):
        gameopt.StepLR(0)
    with pytest.raises(ValueError, match="milestones must be increasing"):
        gameopt.MultiStepLR([5, 2])
    with pytest.raises(ValueError, match="start_factor"):
        gameopt.LinearLR(start_factor=0.0)


def test_schedules_go_in_the_config_per_player(server):
    g, d = make_players()
    opt = GameOptimizer(server, [
        {"params": g, "name": "generator", "schedule": gameopt.StepLR(3)},
        {"params": d, "name": "discriminator"}],
        schedule=gameopt.ExponentialLR(0.5), max_steps=1)
    players = opt.status().config.players
    assert players[0].optimizer.schedule == gameopt.StepLR(3).to_proto()
    assert players[1].optimizer.schedule == \
        gameopt.ExponentialLR(0.5).to_proto()
    opt.close()
    config = gameopt.build_session_config(gameopt.BilinearGame(),
                                          schedule=gameopt.LinearLR())
    assert config.players[0].optimizer.schedule.kind == \
        gameopt.pb.LearningRateSchedule.LINEAR


def test_the_server_steps_the_schedule(server):
    g, d = make_players()
    schedules = {"generator": gameopt.StepLR(2, gamma=0.5),
                 "discriminator": gameopt.CosineAnnealingLR(T_max=4)}
    feed = Feed(g, d, make_batches(4))
    with GameOptimizer(server, {"generator": g, "discriminator": d},
                       lr=0.2, schedule=schedules, max_steps=5) as opt:
        for t in range(5):
            rates = opt.learning_rates()
            for name, schedule in schedules.items():
                assert rates[name] == pytest.approx(
                    schedule.lr(0.2, t), rel=LR_RTOL), (t, name)
            opt.step(feed)
