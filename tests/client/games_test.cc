#include "client/games/games.h"

#include <cmath>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace gameopt {
namespace {

TEST(MakeGame, BuildsEveryNamedGame) {
  GameOptions options;
  options.mog.batch = 8;
  for (const std::string& name : GameNames()) {
    absl::StatusOr<std::unique_ptr<Game>> game = MakeGame(name, options);
    ASSERT_TRUE(game.ok()) << name << ": " << game.status();
    Game& g = **game;
    const Eigen::VectorXd x = g.InitialParameters();
    ASSERT_EQ(x.size(), g.Dimension()) << name;
    g.DrawMinibatches(1, /*seed=*/0);
    EXPECT_TRUE(g.Gradient(x, 0).allFinite()) << name;
    EXPECT_FALSE(g.Metrics(x).empty()) << name;
    std::unique_ptr<Game> clone = g.Clone();
    clone->DrawMinibatches(1, /*seed=*/0);
    EXPECT_EQ(clone->Gradient(x, 0), g.Gradient(x, 0)) << name;
  }
}

TEST(MakeGame, PassesTheOptions) {
  GameOptions options;
  options.bilinear_dim = 3;
  options.quadratic_dims = {1, 2, 3};
  options.dirac.variant = DiracVariant::kWganGp;
  EXPECT_EQ((*MakeGame("bilinear", options))->Dimension(), 6);
  EXPECT_EQ((*MakeGame("quadratic", options))->players().size(), 3u);
  EXPECT_EQ((*MakeGame("dirac", options))->name(), "dirac-wgan-gp");
}

TEST(MakeGame, UnknownNameIsInvalidArgument) {
  EXPECT_EQ(MakeGame("chess", GameOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MakeGame, OptionsOutOfRangeAreInvalidArgument) {
  GameOptions bilinear;
  bilinear.bilinear_dim = 0;
  GameOptions quadratic;
  quadratic.quadratic_dims = {2, 0};
  GameOptions no_players;
  no_players.quadratic_dims.clear();
  GameOptions dirac;
  dirac.dirac.batch = 0;
  GameOptions nan_noise;
  nan_noise.dirac.noise_std = std::nan("");
  GameOptions mog;
  mog.mog.width = 0;
  for (const auto& [name, options] :
       {std::pair{"bilinear", bilinear}, std::pair{"quadratic", quadratic},
        std::pair{"quadratic", no_players}, std::pair{"dirac", dirac},
        std::pair{"dirac", nan_noise}, std::pair{"mog", mog}}) {
    EXPECT_EQ(MakeGame(name, options).status().code(),
              absl::StatusCode::kInvalidArgument)
        << name;
  }
}

}  // namespace
}  // namespace gameopt
