#include "client/games/games.h"

#include <cmath>
#include <optional>

#include "absl/status/status.h"
#include "client/games/bilinear_sum.h"
#include "client/games/quadratic.h"
#include "client/games/tandem.h"
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

// LOLA's and SOS's cross gradients: block i of grad_x l_i is xi_i, and on
// the quadratic game grad_x l_i = A_i x + b_i (its loss matrices); the
// tandem game's by hand, l_x = (x + y)^2 - 2x.
TEST(LossGradient, AgreesWithXiAndTheLosses) {
  constexpr double kTolerance = 1e-12;  // a few roundings of O(1) values
  GameOptions options;
  options.bilinear_dim = 2;
  options.quadratic_dims = {2, 1, 3};
  for (const std::string name : {"bilinear", "quadratic", "tandem"}) {
    std::unique_ptr<Game> game = *MakeGame(name, options);
    const Eigen::VectorXd x =
        Eigen::VectorXd::LinSpaced(game->Dimension(), -0.7, 1.3);
    game->DrawMinibatches(1, 0);
    const Eigen::VectorXd xi = game->Gradient(x, 0);
    int offset = 0;
    const std::vector<PlayerSpec> players = game->players();
    for (size_t i = 0; i < players.size(); ++i) {
      std::optional<Eigen::VectorXd> g =
          game->LossGradient(x, static_cast<int>(i), 0);
      ASSERT_TRUE(g.has_value()) << name;
      const int size = static_cast<int>(NumElements(players[i]));
      EXPECT_LT((g->segment(offset, size) - xi.segment(offset, size)).norm(),
                kTolerance)
          << name << " player " << i;
      if (name == "quadratic") {
        const auto& q = static_cast<const QuadraticGame&>(*game);
        EXPECT_LT((*g - (q.A(i) * x + q.b(i))).norm(), kTolerance) << i;
      }
      offset += size;
    }
  }
  TandemGame tandem;
  const Eigen::Vector2d point(0.3, -1.1);
  EXPECT_LT((*tandem.LossGradient(point, 0, 0) -
             Eigen::Vector2d(2 * (0.3 - 1.1) - 2, 2 * (0.3 - 1.1)))
                .norm(),
            kTolerance);
  MogGan mog(MogGanOptions{}, 0);
  EXPECT_FALSE(mog.LossGradient(mog.InitialParameters(), 0, 0).has_value());
}

TEST(MakeGame, PassesTheOptions) {
  GameOptions options;
  options.bilinear_dim = 3;
  options.quadratic_dims = {1, 2, 3};
  options.dirac.variant = DiracVariant::kWganGp;
  EXPECT_EQ((*MakeGame("bilinear", options))->Dimension(), 6);
  EXPECT_EQ((*MakeGame("quadratic", options))->players().size(), 3u);
  EXPECT_EQ((*MakeGame("dirac", options))->name(), "dirac-wgan-gp");
  EXPECT_EQ((*MakeGame("bilinear_sum", options))->Dimension(), 6);
}

// The finite-sum bilinear game: each minibatch is one term, the mean of
// the terms' fields vanishes at Solution(), and J_i^T w, J_i u are the
// transposed and plain products of one term (checked against finite
// differences of the field, exact for a linear field up to rounding).
TEST(BilinearSumGame, TermsAverageToAFieldThatVanishesAtTheSolution) {
  constexpr double kRounding = 1e-9;  // O(1) values, a few hundred flops
  GameOptions options;
  options.bilinear_dim = 3;
  options.bilinear_terms = 5;
  options.seed = 4;
  absl::StatusOr<std::unique_ptr<Game>> made =
      MakeGame("bilinear_sum", options);
  ASSERT_TRUE(made.ok()) << made.status();
  auto& game = static_cast<BilinearSumGame&>(**made);
  const Eigen::VectorXd solution = game.Solution();
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(6);
  double squares = 0.0;
  constexpr int kDraws = 4000;
  game.DrawMinibatches(kDraws, 1);
  for (int k = 0; k < kDraws; ++k) {
    const Eigen::VectorXd xi = game.Gradient(solution, k);
    mean += xi / kDraws;
    squares += xi.squaredNorm() / kDraws;
  }
  // The terms' fields at the solution average to exactly 0; a sample mean
  // of kDraws uniform draws has a standard error of rms / sqrt(kDraws) per
  // coordinate: 5 of those bounds its norm with room to spare.
  EXPECT_GT(squares, 0.0);  // the terms differ
  EXPECT_LT(mean.norm(), 5.0 * std::sqrt(squares / kDraws));
  Eigen::VectorXd u(6), w(6);
  u << 0.3, -1, 2, 0.5, 0.1, -0.7;
  w << 1, 0.2, -0.4, 0.9, -1.1, 0.6;
  const Eigen::VectorXd x = Eigen::VectorXd::Ones(6);
  const Eigen::VectorXd ju = game.Gradient(x + u, 0) - game.Gradient(x, 0);
  EXPECT_LT((game.Jvp(x, u, 0) - ju).norm(), kRounding);
  // <w, J u> = <J^T w, u> for every u.
  EXPECT_NEAR(w.dot(game.Jvp(x, u, 0)), game.Vjp(x, w, 0).dot(u), kRounding);
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
