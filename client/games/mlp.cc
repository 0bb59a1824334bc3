#include "client/games/mlp.h"

#include <string>

#include "client/games/check.h"

namespace gameopt {
namespace {

using RowMajorMap = Eigen::Map<
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
using ConstRowMajorMap =
    Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic,
                                   Eigen::RowMajor>>;

int Rows(const MlpShape& shape, int layer) {
  return layer == shape.depth ? shape.output : shape.width;
}
int Cols(const MlpShape& shape, int layer) {
  return layer == 0 ? shape.input : shape.width;
}

}  // namespace

std::vector<TensorSpec> MlpTensors(const MlpShape& shape) {
  std::vector<TensorSpec> tensors;
  for (int l = 0; l <= shape.depth; ++l) {
    tensors.push_back(
        {"w" + std::to_string(l), {Rows(shape, l), Cols(shape, l)}});
    tensors.push_back({"b" + std::to_string(l), {Rows(shape, l)}});
  }
  return tensors;
}

int64_t MlpSize(const MlpShape& shape) {
  int64_t size = 0;
  for (const TensorSpec& tensor : MlpTensors(shape)) {
    size += NumElements(tensor);
  }
  return size;
}

Mlp::Mlp(const MlpShape& shape, const double* params, const double* tangent)
    : shape_(shape),
      dual_(tangent != nullptr),
      param_tangent_(dual_ &&
                     !Eigen::Map<const Eigen::VectorXd>(tangent, MlpSize(shape))
                          .isZero(0.0)) {
  int64_t offset = 0;
  for (int l = 0; l <= shape.depth; ++l) {
    const int rows = Rows(shape, l), cols = Cols(shape, l);
    offsets_.push_back(offset);
    weights_.push_back(ConstRowMajorMap(params + offset, rows, cols));
    if (dual_) {
      weight_tangents_.push_back(
          ConstRowMajorMap(tangent + offset, rows, cols));
    }
    offset += int64_t{rows} * cols;
    biases_.push_back(Eigen::Map<const Eigen::VectorXd>(params + offset, rows));
    if (dual_) {
      bias_tangents_.push_back(
          Eigen::Map<const Eigen::VectorXd>(tangent + offset, rows));
    }
    offset += rows;
  }
}

void Mlp::Forward(const Eigen::MatrixXd& input,
                  const Eigen::MatrixXd* input_tangent, MlpTape* tape) const {
  GAMEOPT_GAMES_CHECK(input.rows() == shape_.input, "bad MLP input size");
  GAMEOPT_GAMES_CHECK(dual_ || input_tangent == nullptr,
                      "an input tangent needs dual mode");
  const int depth = shape_.depth;
  tape->inputs.resize(depth + 1);
  tape->pre.resize(depth + 1);
  tape->input_tangents.resize(dual_ ? depth + 1 : 0);
  tape->zero_tangents = dual_ && !param_tangent_ && input_tangent == nullptr;
  const bool tangents = dual_ && !tape->zero_tangents;
  tape->inputs[0] = input;
  if (tangents) {
    if (input_tangent != nullptr) {
      tape->input_tangents[0] = *input_tangent;
    } else {
      tape->input_tangents[0].setZero(input.rows(), input.cols());
    }
  }
  for (int l = 0; l <= depth; ++l) {
    const Eigen::MatrixXd& h = tape->inputs[l];
    Eigen::MatrixXd& a = tape->pre[l];
    a.noalias() = weights_[l] * h;
    a.colwise() += biases_[l];
    if (l < depth) tape->inputs[l + 1] = a.cwiseMax(0.0);
    if (!tangents) continue;
    Eigen::MatrixXd& da =
        l < depth ? tape->input_tangents[l + 1] : tape->output_tangent;
    da.noalias() = weights_[l] * tape->input_tangents[l];
    if (param_tangent_) {
      da.noalias() += weight_tangents_[l] * h;
      da.colwise() += bias_tangents_[l];
    }
    if (l < depth) da = (a.array() > 0).select(da, 0.0);  // relu'(a) da
  }
  if (tape->zero_tangents) {
    tape->output_tangent.setZero(shape_.output, input.cols());
  }
}

void Mlp::Backward(const Eigen::MatrixXd& g, const Eigen::MatrixXd* g_tangent,
                   MlpTape* tape, double* grad, double* grad_tangent,
                   Eigen::MatrixXd* input_grad,
                   Eigen::MatrixXd* input_grad_tangent) const {
  const bool dual = dual_ && g_tangent != nullptr;
  GAMEOPT_GAMES_CHECK(
      dual || (grad_tangent == nullptr && input_grad_tangent == nullptr),
      "tangent outputs need dual mode and g_tangent");
  // d loss / d a_l and its tangent: g itself for the output layer, then the
  // tape's scratch.
  const Eigen::MatrixXd* ga = &g;
  const Eigen::MatrixXd* dga = g_tangent;
  for (int l = shape_.depth; l >= 0; --l) {
    const int rows = Rows(shape_, l), cols = Cols(shape_, l);
    const Eigen::MatrixXd& h = tape->inputs[l];
    if (grad != nullptr) {
      RowMajorMap(grad + offsets_[l], rows, cols).noalias() +=
          *ga * h.transpose();
      Eigen::Map<Eigen::VectorXd>(grad + offsets_[l] + rows * cols, rows) +=
          ga->rowwise().sum();
    }
    if (grad_tangent != nullptr) {
      RowMajorMap dw(grad_tangent + offsets_[l], rows, cols);
      dw.noalias() += *dga * h.transpose();
      if (!tape->zero_tangents) {
        dw.noalias() += *ga * tape->input_tangents[l].transpose();
      }
      Eigen::Map<Eigen::VectorXd>(grad_tangent + offsets_[l] + rows * cols,
                                  rows) += dga->rowwise().sum();
    }
    if (l == 0 && input_grad == nullptr) break;
    Eigen::MatrixXd& gh = l == 0 ? *input_grad : tape->gh;
    gh.noalias() = weights_[l].transpose() * *ga;  // d loss / d h_l
    Eigen::MatrixXd* dgh = nullptr;
    if (dual && (l > 0 || input_grad_tangent != nullptr)) {
      dgh = l == 0 ? input_grad_tangent : &tape->dgh;
      dgh->noalias() = weights_[l].transpose() * *dga;
      if (param_tangent_) {
        dgh->noalias() += weight_tangents_[l].transpose() * *ga;
      }
    }
    if (l == 0) break;
    const auto active = tape->pre[l - 1].array() > 0;  // relu'(a_{l-1})
    tape->ga = active.select(gh, 0.0);
    ga = &tape->ga;
    if (dual) {
      tape->dga = active.select(*dgh, 0.0);
      dga = &tape->dga;
    }
  }
}

}  // namespace gameopt
