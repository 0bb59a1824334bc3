// Competitive<T>: the CGD / ACGD phase plan of cgd.h. Internal to the
// core: cgd.cc has the step, cgd_state.cc its checkpoint state.
#ifndef GAMEOPT_SERVER_CORE_CGD_INTERNAL_H_
#define GAMEOPT_SERVER_CORE_CGD_INTERNAL_H_

#include <optional>

#include "Eigen/Core"
#include "server/core/krylov.h"
#include "server/core/typed_algorithm.h"

namespace gameopt {

// AlgorithmConfig::cgd_max_iterations's bound (the plan holds
// 2 cgd_max_iterations + 5 phases; GMRES keeps that many basis vectors).
inline constexpr int kMaxCgdIterations = 1000;

template <typename T>
class Competitive final : public TypedAlgorithm<T> {
 public:
  Competitive(const SessionConfig& config, GameLayout layout);

 protected:
  absl::Status OnGradient(absl::Span<const FlatVector* const> samples) override;
  absl::Status OnProducts(const SampleSet& vjp, const SampleSet& jvp) override;
  void ExportExtra(AlgorithmState& state) const override;
  absl::Status ImportExtra(const AlgorithmState& state) override;

 private:
  // The products round the step waits for.
  enum class Stage {
    kRhs = 1,    // M_so H_o xi_o
    kWarmInner,  // M_os H_s^1/2 z0
    kWarmOuter,  // M_so H_o (M_os H_s^1/2 z0)
    kInner,      // M_os H_s^1/2 v, v the solver's request
    kOuter,      // M_so H_o (M_os H_s^1/2 v)
    kResponse,   // M_os d_s
  };
  static const char* StageLabel(Stage stage) {
    switch (stage) {
      case Stage::kRhs:
        return "cgd: rhs";
      case Stage::kWarmInner:
      case Stage::kWarmOuter:
        return "cgd: warm start";
      case Stage::kInner:
      case Stage::kOuter:
        return "cgd: krylov";
      case Stage::kResponse:
        return "cgd: response";
    }
    return "cgd";
  }

  Eigen::VectorXd BlockOf(const Eigen::VectorXd& v, int player) const;
  // Opens the next products round: probe u in `player`'s block, zeros
  // elsewhere, the same for every sample.
  void Ask(Stage stage, int player, const Eigen::VectorXd& u);
  absl::Status Start(const Eigen::VectorXd& z0, const Eigen::VectorXd& r0);
  // The next Krylov round, or the response round once the solve is done.
  absl::Status Continue();
  // Applies the step with M_os d_s; completes it.
  absl::Status Finish(const Eigen::VectorXd& mos_ds);

  const bool adaptive_;
  KrylovOptions krylov_;
  int s_ = 0;  // the player whose system is solved (fewer coordinates)
  int o_ = 1;  // the other one
  // Between steps.
  Eigen::VectorXd warm_;    // z of the last solve; empty before the first
  Eigen::VectorXd sq_avg_;  // ACGD's v, all coordinates
  // Within a step (checkpointed mid-step).
  Stage stage_ = Stage::kRhs;
  int rounds_ = 0;              // products rounds so far
  int num_samples_ = 0;         // K of the gradient phase (one probe each)
  Eigen::VectorXd xi_;          // the mean gradient, float64
  Eigen::VectorXd h_;           // step sizes per coordinate
  Eigen::VectorXd sq_pending_;  // ACGD's v of this step (kept when it ends)
  Eigen::VectorXd b_;           // the right-hand side
  std::optional<KrylovSolver> solver_;
  Vec<T> mean_, direction_;  // scratch
};

extern template class Competitive<float>;
extern template class Competitive<double>;

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_CGD_INTERNAL_H_
