// LOLA and SOS as phase plans (the plan and formulas: algorithms_lola.h).
#include "server/core/algorithms_lola.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/estimator.h"
#include "server/core/typed_algorithm.h"

namespace gameopt {

double SosP(double dot, double xi0_squared_norm, double xi_norm, double a,
            double b) {
  const double p1 =
      dot >= 0.0 ? 1.0 : std::min(1.0, -a * xi0_squared_norm / dot);
  const double p2 = xi_norm < b ? xi_norm * xi_norm : 1.0;
  return std::min(p1, p2);
}

namespace {

template <typename T>
class OpponentShaping final : public TypedAlgorithm<T> {
 public:
  OpponentShaping(const SessionConfig& config, GameLayout layout)
      : TypedAlgorithm<T>(config, std::move(layout)) {
    const std::vector<PlayerLayout>& p = this->layout().players();
    const int n = this->layout().num_players();
    for (int i = 0; i < n; ++i) {
      PhaseSpec spec =
          GradientPhase(i, "cross gradient " + p[i].name, this->AllPlayers());
      spec.loss = i;
      this->plan().push_back(std::move(spec));
    }
    for (int i = 0; i < n; ++i) {
      for (bool jvp : {false, true}) {
        this->plan().push_back(ProductsPhase(
            n + 2 * i + (jvp ? 1 : 0),
            (jvp ? "lookahead " : "shaping ") + p[i].name, /*vjp=*/!jvp, jvp));
      }
    }
    loss_gradients_.resize(n);
  }

 protected:
  absl::Status OnGradient(
      absl::Span<const FlatVector* const> samples) override {
    const int i = this->phase().loss;
    const int n = this->layout().num_players();
    loss_gradients_[i] = this->mean_gradient();
    if (i + 1 < n) {
      this->NextPhase();
      return absl::OkStatus();
    }
    const int64_t d = this->layout().dimension();
    RebuildXi();
    chi_ = Vec<T>::Zero(d);
    lookahead_ = Vec<T>::Zero(d);
    SetProbe(/*player=*/0, /*jvp=*/false, samples.size());
    this->NextPhase();
    return absl::OkStatus();
  }

  absl::Status OnProducts(const SampleSet& vjp, const SampleSet& jvp) override {
    const int n = this->layout().num_players();
    const int slot = this->phase().index - n;
    const int player = slot / 2;
    const bool is_jvp = slot % 2 == 1;
    MeanOf<T>(is_jvp ? jvp : vjp, mean_);
    Vec<T>& target = is_jvp ? lookahead_ : chi_;
    this->Block(target, player) = this->Block(mean_, player);
    if (!(is_jvp && player + 1 == n)) {
      SetProbe(is_jvp ? player + 1 : player, !is_jvp, this->probes().size());
      this->NextPhase();
      return absl::OkStatus();
    }
    const AlgorithmConfig& a = this->config().algorithm;
    const T alpha = static_cast<T>(a.lola_alpha);
    direction_ = xi_ - alpha * lookahead_;  // xi_0
    double p = 1.0;
    if (a.kind == AlgorithmKind::kSos) {
      const double dot = -static_cast<double>(alpha) *
                         static_cast<double>(chi_.dot(direction_));
      p = SosP(dot, static_cast<double>(direction_.squaredNorm()),
               static_cast<double>(xi_.norm()), a.sos_a, a.sos_b);
    }
    direction_ -= static_cast<T>(p) * alpha * chi_;
    StepStats& stats = this->mutable_stats();
    stats.sos_p = p;
    stats.correction_norm = static_cast<double>((direction_ - xi_).norm());
    for (int q = 0; q < n; ++q) {
      stats.xi_norm[q] = static_cast<double>(this->Block(xi_, q).norm());
    }
    if (absl::Status s = this->ApplyDirection(direction_, {}); !s.ok()) {
      return s;
    }
    this->NextPhase();
    return absl::OkStatus();
  }

  // "lola.loss_gradient.<i>" for every cross-gradient round closed in this
  // step; in the products phases also "lola.chi" and "lola.lookahead", the
  // blocks of chi and O xi the closed rounds have filled (xi is rebuilt
  // from the loss gradients).
  void ExportExtra(AlgorithmState& state) const override {
    const int closed =
        std::min(this->phase().index, this->layout().num_players());
    for (int i = 0; i < closed; ++i) {
      this->ExportVector(loss_gradients_[i],
                         absl::StrCat("lola.loss_gradient.", i), state);
    }
    if (this->phase().kind != PhaseSpec::Kind::kProducts) return;
    this->ExportVector(chi_, "lola.chi", state);
    this->ExportVector(lookahead_, "lola.lookahead", state);
  }

  absl::Status ImportExtra(const AlgorithmState& state) override {
    const int n = this->layout().num_players();
    const int closed = std::min(this->phase().index, n);
    for (int i = 0; i < n; ++i) loss_gradients_[i].resize(0);
    chi_.resize(0);
    lookahead_.resize(0);
    for (int i = 0; i < closed; ++i) {
      absl::Status s = this->ImportVector(
          state, absl::StrCat("lola.loss_gradient.", i), loss_gradients_[i],
          /*required=*/true);
      if (!s.ok()) return s;
    }
    if (this->phase().kind != PhaseSpec::Kind::kProducts) {
      return absl::OkStatus();
    }
    for (auto [name, vec] : {std::pair<const char*, Vec<T>*>{"lola.chi", &chi_},
                             {"lola.lookahead", &lookahead_}}) {
      if (absl::Status s = this->ImportVector(state, name, *vec, true);
          !s.ok()) {
        return s;
      }
    }
    RebuildXi();
    return absl::OkStatus();
  }

 private:
  // xi: block p of player p's own loss gradient, for every player.
  void RebuildXi() {
    xi_.resize(this->layout().dimension());
    for (int p = 0; p < this->layout().num_players(); ++p) {
      this->Block(xi_, p) = this->Block(loss_gradients_[p], p);
    }
  }

  // The probe of every sample for `player`'s round: the VJP's w^(i) (the
  // gradient of l_i with block i zeroed) or the JVP's u^(i) (xi with
  // block i zeroed). The previous round's probe buffer is reused unless a
  // transport still holds it (MakeExclusive).
  void SetProbe(int player, bool jvp, size_t samples) {
    std::vector<std::shared_ptr<FlatVector>>& probes = this->mutable_probes();
    std::shared_ptr<FlatVector> probe = probes.empty() ? nullptr : probes[0];
    probes.clear();
    MakeExclusive(probe, this->config().dtype, this->layout().dimension());
    VecMap<T> w = probe->template as<T>();
    w = jvp ? xi_ : loss_gradients_[player];
    const PlayerLayout& p = this->layout().players()[player];
    w.segment(p.offset, p.size).setZero();
    probes.assign(samples, probe);
  }

  std::vector<Vec<T>> loss_gradients_;  // G_i = grad_x l_i, this step
  Vec<T> xi_, chi_, lookahead_, mean_, direction_;
};

}  // namespace

template <typename T>
std::unique_ptr<Algorithm> MakeOpponentShaping(const SessionConfig& config,
                                               GameLayout layout) {
  if (config.algorithm.kind != AlgorithmKind::kLola &&
      config.algorithm.kind != AlgorithmKind::kSos) {
    return nullptr;
  }
  return std::make_unique<OpponentShaping<T>>(config, std::move(layout));
}

template std::unique_ptr<Algorithm> MakeOpponentShaping<float>(
    const SessionConfig& config, GameLayout layout);
template std::unique_ptr<Algorithm> MakeOpponentShaping<double>(
    const SessionConfig& config, GameLayout layout);

}  // namespace gameopt
