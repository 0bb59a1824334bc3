// Shared helpers of the service tests: a quadratic game with exact products,
// proto encoding of its vectors, a worker loop over a real stub, a recording
// of what each worker submitted and its replay into a core Session driven
// directly (no network), and servers on 127.0.0.1:0.
#ifndef GAMEOPT_TESTS_SERVICE_TEST_UTIL_H_
#define GAMEOPT_TESTS_SERVICE_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/core/session.h"
#include "server/service/server.h"

namespace gameopt::testing {

// Standard deviation of the per-(worker, round, sample) noise added to
// gradients, so that samples differ and the estimators matter.
inline constexpr double kGradientNoise = 0.1;
// Client deadline of every worker RPC: a broken barrier fails the test
// instead of hanging it.
inline constexpr absl::Duration kRpcDeadline = absl::Seconds(20);

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};
struct PlayerSpec {
  std::string name;
  std::vector<TensorSpec> tensors;
};

// The random quadratic game of client/games/quadratic.h over players with
// tensors of any shapes (player i's block is its tensors in order):
// l_i(x) = 1/2 x^T A_i x + b_i^T x with A_i symmetric, so xi(x) = J x + c
// where block row i of J (and of c) is block row i of A_i (and of b_i); J's
// diagonal blocks are symmetric, the off-diagonal coupling is not, so the
// field rotates. The products are exact: J^T w and J w. x0 is a standard
// Gaussian draw from the seed.
class QuadraticGame {
 public:
  static QuadraticGame Random(std::vector<PlayerSpec> players, uint64_t seed);
  // "gen": w [2, 2], b [2]; "disc": w [3], s [] (a scalar). d = 10.
  static QuadraticGame TwoPlayer(uint64_t seed);

  const std::vector<PlayerSpec>& players() const { return players_; }
  int dimension() const { return static_cast<int>(c_.size()); }
  const Eigen::MatrixXd& jacobian() const { return j_; }
  const Eigen::VectorXd& x0() const { return x0_; }
  Eigen::VectorXd Xi(const Eigen::VectorXd& x) const { return j_ * x + c_; }
  // Gradient sample `k` of a task with `seed`: xi(x) plus seeded noise, zero
  // outside the blocks of `players` (names).
  Eigen::VectorXd Sample(const Eigen::VectorXd& x, uint64_t seed, int k,
                         const std::vector<std::string>& players) const;
  // Offset and size of player `name`'s block; size -1 if unknown.
  std::pair<int, int> Block(const std::string& name) const;

 private:
  std::vector<PlayerSpec> players_;
  Eigen::MatrixXd j_;
  Eigen::VectorXd c_, x0_;
};

// The blocks of `players` (empty = all) of `v` as a proto Vector of `dtype`.
v1::Vector EncodeVector(const QuadraticGame& game, const Eigen::VectorXd& v,
                        v1::DType dtype,
                        const std::vector<std::string>& players = {});
// The joint vector of `vector` (either dtype), zero where absent.
Eigen::VectorXd DecodeVector(const QuadraticGame& game,
                             const v1::Vector& vector);
// Every tensor's bytes in message order: compares with FlatBytes.
std::string VectorBytes(const v1::Vector& vector);
std::string FlatBytes(const FlatVector& values);

// A session of `game`: float64 initial values x0, SGD with `learning_rate`,
// phases that wait forever (tests set deadlines when they want them).
v1::SessionConfig QuadraticConfig(const QuadraticGame& game,
                                  v1::Algorithm algorithm, int workers,
                                  int64_t max_steps,
                                  v1::DType dtype = v1::FLOAT64,
                                  double learning_rate = 0.05);

// Options for a test server: 127.0.0.1:0, silent unless GAMEOPT_TEST_LOG is
// set in the environment.
GameOptServerOptions TestServerOptions();
// Started, or nullptr (with the reason printed).
std::unique_ptr<GameOptServer> StartServer(
    GameOptServerOptions options = TestServerOptions());
// A stub with no message size limits on the client side.
std::unique_ptr<v1::GameOptimizer::Stub> NewStub(const std::string& target);
std::unique_ptr<v1::GameOptimizer::Stub> NewStub(int port);

// The worker's answer to a GRADIENT (or CROSS_GRADIENT: loss_player
// echoed, xi's sample in every block standing in) / PRODUCTS task at `x`.
v1::SubmitGradientRequest GradientRequest(const QuadraticGame& game,
                                          const std::string& session_id,
                                          int64_t worker_id,
                                          const v1::Task& task,
                                          const Eigen::VectorXd& x,
                                          v1::DType dtype = v1::FLOAT64);
v1::SubmitJacobianProductsRequest ProductsRequest(
    const QuadraticGame& game, const std::string& session_id, int64_t worker_id,
    const v1::Task& task, v1::DType dtype = v1::FLOAT64);

// What each worker submitted, by round (first submission per worker and
// round). Thread-safe.
class Recording {
 public:
  struct Entry {
    int64_t worker_id = 0;
    bool products = false;
    v1::SubmitGradientRequest gradient;
    v1::SubmitJacobianProductsRequest jacobian;
    v1::Task task;  // products: the task answered, with its probes
  };
  void Add(const v1::SubmitGradientRequest& request);
  void Add(const v1::SubmitJacobianProductsRequest& request,
           const v1::Task& task = {});
  std::map<int64_t, std::vector<Entry>> rounds() const;

 private:
  void Add(int64_t round, Entry entry);
  mutable absl::Mutex mu_;
  std::map<int64_t, std::vector<Entry>> rounds_ ABSL_GUARDED_BY(mu_);
};

// Creates a core Session from `config` (same conversion as the service),
// joins `workers` workers, then feeds it every recorded round in order, the
// round's submissions shuffled with `shuffle_seed`, calling `after_round`
// (when set) after each. Returns x afterwards.
// `tasks`, when set, gets every products task the core session hands
// out, by (round, worker id).
absl::StatusOr<ParametersSnapshot> Replay(
    const v1::SessionConfig& config, const Recording& recording, int workers,
    uint64_t shuffle_seed,
    const std::function<void(Session&, int64_t round)>& after_round = nullptr,
    std::map<std::pair<int64_t, int64_t>, Task>* tasks = nullptr);

struct WorkerOptions {
  std::string name;
  int64_t max_tasks = 1000;        // stop after this many submissions
  v1::DType dtype = v1::FLOAT64;   // of the tensors it sends
  Recording* recording = nullptr;  // optional
};
struct WorkerRun {
  grpc::Status status;  // of the last RPC
  int64_t worker_id = 0;
  int64_t submissions = 0;
  v1::Task last_task;
};
// Join, then answer tasks until DONE, an error or max_tasks.
WorkerRun RunWorker(v1::GameOptimizer::Stub& stub,
                    const std::string& session_id, const QuadraticGame& game,
                    const WorkerOptions& options = {});

// Unary calls with kRpcDeadline.
grpc::Status Join(v1::GameOptimizer::Stub& stub, const std::string& session_id,
                  v1::TaskResponse* response, int64_t worker_id = 0,
                  const std::string& name = "");
grpc::Status Submit(v1::GameOptimizer::Stub& stub,
                    const v1::SubmitGradientRequest& request,
                    v1::TaskResponse* response);
grpc::Status Submit(v1::GameOptimizer::Stub& stub,
                    const v1::SubmitJacobianProductsRequest& request,
                    v1::TaskResponse* response);
absl::StatusOr<std::string> CreateSession(v1::GameOptimizer::Stub& stub,
                                          const v1::SessionConfig& config);
absl::StatusOr<v1::SessionStatus> GetSession(v1::GameOptimizer::Stub& stub,
                                             const std::string& session_id);
absl::StatusOr<v1::GetParametersResponse> GetParameters(
    v1::GameOptimizer::Stub& stub, const std::string& session_id);

// A SubmitGradient in flight (the client's callback API).
struct AsyncCall {
  v1::SubmitGradientRequest request;
  grpc::ClientContext context;
  v1::TaskResponse response;
  grpc::Status status;
  absl::Notification done;
};
std::unique_ptr<AsyncCall> SubmitAsync(v1::GameOptimizer::Stub& stub,
                                       v1::SubmitGradientRequest request,
                                       absl::Duration deadline = kRpcDeadline);

// Expects the server's parameters to equal, byte for byte, those of a core
// session fed the recorded submissions (Replay, in two orders per round).
void ExpectMatchesCore(v1::GameOptimizer::Stub& stub,
                       const std::string& session_id,
                       const v1::SessionConfig& config,
                       const Recording& recording, int workers);

// One request, one response over any method (e.g. the health service's),
// with hand-encoded bytes; a 5 s deadline; the bearer `token` unless
// empty. The response's bytes, or the call's status.
absl::StatusOr<std::string> GenericCall(std::shared_ptr<grpc::Channel> channel,
                                        const std::string& method,
                                        const std::string& request,
                                        const std::string& token = "");

// Polls `condition` until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition,
             absl::Duration timeout = absl::Seconds(5));
// Polls GetSession until `n` workers have submitted to the open round: the
// submissions are accepted and their calls wait at the barrier.
bool WaitForSubmitted(v1::GameOptimizer::Stub& stub,
                      const std::string& session_id, int n);

}  // namespace gameopt::testing

#endif  // GAMEOPT_TESTS_SERVICE_TEST_UTIL_H_
