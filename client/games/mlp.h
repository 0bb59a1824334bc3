// A fully connected ReLU network with exact first- and second-order passes,
// the building block of the MoG GAN.
//
//   h_0 = input (in x B, one sample per column)
//   a_l = W_l h_l + b_l 1^T,  h_{l+1} = relu(a_l)   for l < depth
//   output = a_depth           (linear output layer, out x B)
// Parameters, flat and row-major: w0 {width, in}, b0 {width}, w1 {width,
// width}, b1, ..., w{depth} {out, width}, b{depth} {out} (MlpTensors()).
//
// Second order ("dual") mode carries a tangent next to every value matrix:
// a parameter tangent dtheta and an input tangent dh_0 give, by
// (A + eps A')(B + eps B') = AB + eps (A'B + AB'), the directional
// derivative of every activation. Backward() then returns the gradient of
// a scalar loss and, with the tangent of d loss / d output, its directional
// derivative: a Hessian-vector product (forward over reverse). ReLU's
// derivative is a 0/1 mask, whose own derivative is zero almost everywhere,
// so the products are exact wherever no pre-activation is exactly zero.
#ifndef GAMEOPT_CLIENT_GAMES_MLP_H_
#define GAMEOPT_CLIENT_GAMES_MLP_H_

#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "client/worker/game.h"

namespace gameopt {

struct MlpShape {
  int input = 1;
  int width = 16;
  int depth = 4;  // hidden layers; depth + 1 affine layers in all
  int output = 1;
};

std::vector<TensorSpec> MlpTensors(const MlpShape& shape);
int64_t MlpSize(const MlpShape& shape);

// Activations of one forward pass, kept for the backward pass, and the
// backward pass's scratch. Reusing one tape across calls of equal batch size
// reuses its buffers: no allocation (and no page faults) per call.
struct MlpTape {
  std::vector<Eigen::MatrixXd> inputs;          // h_l, l = 0..depth
  std::vector<Eigen::MatrixXd> input_tangents;  // dh_l (dual mode only)
  std::vector<Eigen::MatrixXd> pre;             // a_l, l = 0..depth
  Eigen::MatrixXd output_tangent;               // da_depth (dual mode only)
  // Dual mode with a zero parameter tangent and no input tangent: every
  // tangent is zero, only output_tangent is stored (as zeros).
  bool zero_tangents = false;
  // Backward scratch: d loss / d a_l, d loss / d h_l and their tangents.
  Eigen::MatrixXd ga, dga, gh, dgh;
  const Eigen::MatrixXd& output() const { return pre.back(); }
};

class Mlp {
 public:
  // `params` points at MlpSize(shape) flat parameters. `tangent` points at
  // as many parameter tangents, or is null: first-order mode. Both are
  // copied. Products with an all-zero parameter tangent are skipped.
  Mlp(const MlpShape& shape, const double* params, const double* tangent);

  bool dual() const { return dual_; }

  // Runs the network on `input`. In dual mode `input_tangent` is the tangent
  // of the input (null: zero); in first-order mode it must be null.
  void Forward(const Eigen::MatrixXd& input,
               const Eigen::MatrixXd* input_tangent, MlpTape* tape) const;

  // Back-propagates g = d loss / d output (and in dual mode its tangent dg)
  // through the pass recorded in `tape` (whose scratch it uses; g must not
  // alias it). Each output pointer may be null to skip that work:
  // - grad (+)= d loss / d params and grad_tangent (+)= its tangent
  //   (MlpSize entries each, ADDED to, so several passes can accumulate);
  // - input_grad = d loss / d input, input_grad_tangent = its tangent.
  void Backward(const Eigen::MatrixXd& g, const Eigen::MatrixXd* g_tangent,
                MlpTape* tape, double* grad, double* grad_tangent,
                Eigen::MatrixXd* input_grad,
                Eigen::MatrixXd* input_grad_tangent) const;

 private:
  MlpShape shape_;
  bool dual_;
  bool param_tangent_;  // dual mode and some parameter tangent is nonzero
  std::vector<Eigen::MatrixXd> weights_, weight_tangents_;
  std::vector<Eigen::VectorXd> biases_, bias_tangents_;
  std::vector<int64_t> offsets_;  // flat offset of w_l; b_l follows it
};

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_GAMES_MLP_H_
