// GameOptimizerService: gameopt.v1.GameOptimizer over a SessionRegistry.
//
// Every method converts the request (proto_convert.h), calls the core,
// converts back and finishes with the core's status mapped code for code
// (grpc_status.h): unknown session or worker NOT_FOUND, stale round
// FAILED_PRECONDITION (the message has the current step), bad input
// INVALID_ARGUMENT naming the field, a round that missed its quorum ABORTED
// naming the missing workers, a full session RESOURCE_EXHAUSTED, shutdown
// UNAVAILABLE.
//
// JoinSession, SubmitGradient and SubmitJacobianProducts may wait at the
// round's barrier. They hold no thread while waiting: each such call is a
// reactor that hands the session a TaskCallback and finishes the RPC from
// it, on whichever thread opens the barrier (or synchronously). A cancelled
// call (client cancel, deadline, server shutdown) is withdrawn from the
// session with Session::Cancel and finishes CANCELLED; its accepted
// submission stays in the round.
//
// The three waiting calls are registered only in their raw form
// (grpc::ByteBuffer in and out, wire_format.h): requests are parsed in
// place and tensors in responses reference the session's vectors, so a
// payload is copied at most once per direction and no parameter-sized
// buffer is allocated per call.
//
// Bytes: every call addressed to an existing session (JoinSession,
// Submit*, GetParameters) adds its serialized request and response sizes to
// the session's TrafficCounters (two relaxed atomic adds, no lock), which
// GetMetrics reports.
//
// Authorization (auth.h): every method first authenticates the caller's
// bearer token (UNAUTHENTICATED), then checks the token's role and sessions
// for the call (PERMISSION_DENIED), before reading or changing any state.
// ListSessions lists only the sessions the token may read. A worker id is
// bound to the token that joined it (auth.h, Grant): its calls with another
// worker token are PERMISSION_DENIED.
//
// Thread-safe. The registry must outlive the service, and the service must
// outlive the grpc::Server it is registered with.
#ifndef GAMEOPT_SERVER_SERVICE_GAME_OPTIMIZER_SERVICE_H_
#define GAMEOPT_SERVER_SERVICE_GAME_OPTIMIZER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/core/registry.h"
#include "server/service/auth.h"

namespace gameopt {

namespace internal {

// Counts live reactors and lets a caller wait for none. Thread-safe.
class ReactorCount {
 public:
  void Add();
  void Remove();
  int64_t live() const;
  bool AwaitZero(absl::Duration timeout) const;

 private:
  mutable absl::Mutex mu_;
  int64_t live_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace internal

// Receives one log line (no trailing newline); must be thread-safe.
using LogSink = std::function<void(absl::string_view line)>;

class GameOptimizerService final
    : public v1::GameOptimizer::WithRawCallbackMethod_JoinSession<
          v1::GameOptimizer::WithRawCallbackMethod_SubmitGradient<
              v1::GameOptimizer::WithRawCallbackMethod_SubmitJacobianProducts<
                  v1::GameOptimizer::CallbackService>>> {
 public:
  // `log` (may be empty) gets session lifecycle lines (created, deleted).
  explicit GameOptimizerService(SessionRegistry* registry, LogSink log = {});

  GameOptimizerService(const GameOptimizerService&) = delete;
  GameOptimizerService& operator=(const GameOptimizerService&) = delete;

  // Replaces the open authorizer (every call allowed). Call before the
  // service serves: not thread-safe.
  void set_authorizer(Authorizer authorizer) {
    authorizer_ = std::move(authorizer);
  }

  // From now on every new call fails with UNAVAILABLE `why`. Calls already
  // waiting are answered by the registry (SessionRegistry::CloseAll).
  void StartShutdown(absl::Status why);

  // Waiting-capable calls (Join / Submit*) whose reactor has not been
  // destroyed yet. 0 when the server is idle: a test's leak check.
  int64_t live_reactors() const;
  // Blocks until live_reactors() is 0 or `timeout` passed; true if 0. The
  // server drains answered calls this way before grpc::Server::Shutdown,
  // which would otherwise cancel calls whose status is not yet sent.
  bool AwaitNoReactors(absl::Duration timeout) const;

  grpc::ServerUnaryReactor* CreateSession(
      grpc::CallbackServerContext* context,
      const v1::CreateSessionRequest* request,
      v1::CreateSessionResponse* response) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* context,
                                       const v1::GetSessionRequest* request,
                                       v1::SessionStatus* response) override;
  grpc::ServerUnaryReactor* ListSessions(
      grpc::CallbackServerContext* context,
      const v1::ListSessionsRequest* request,
      v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSession(
      grpc::CallbackServerContext* context,
      const v1::DeleteSessionRequest* request,
      v1::DeleteSessionResponse* response) override;
  // The three calls that may wait at the barrier, registered raw: the
  // request is a serialized JoinSessionRequest, SubmitGradientRequest or
  // SubmitJacobianProductsRequest, the response a TaskResponse.
  grpc::ServerUnaryReactor* JoinSession(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* SubmitGradient(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* SubmitJacobianProducts(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* LeaveSession(
      grpc::CallbackServerContext* context,
      const v1::LeaveSessionRequest* request,
      v1::LeaveSessionResponse* response) override;
  // Worker role (server/core/liveness.h).
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* GetParameters(
      grpc::CallbackServerContext* context,
      const v1::GetParametersRequest* request,
      v1::GetParametersResponse* response) override;
  // One session's metrics, or every session's when session_id is empty.
  grpc::ServerUnaryReactor* GetMetrics(
      grpc::CallbackServerContext* context,
      const v1::GetMetricsRequest* request,
      v1::GetMetricsResponse* response) override;
  // Spectrum diagnostics (spectrum_methods.cc). EstimateSpectrum waits for
  // the estimate like Join/Submit wait at the barrier (no thread held,
  // cancellable, counted in live_reactors()).
  grpc::ServerUnaryReactor* EstimateSpectrum(
      grpc::CallbackServerContext* context,
      const v1::EstimateSpectrumRequest* request,
      v1::Spectrum* response) override;
  grpc::ServerUnaryReactor* GetSpectrum(
      grpc::CallbackServerContext* context,
      const v1::GetSpectrumRequest* request,
      v1::GetSpectrumResponse* response) override;

 private:
  // The caller's grant: UNAVAILABLE once shutting down, UNAUTHENTICATED
  // without a valid token.
  absl::StatusOr<const Grant*> Admit(
      const grpc::CallbackServerContext& context) const;
  // Admit, then PERMISSION_DENIED unless the grant's role may do `access`
  // on some session (Grant::AllowsSome): the opening of a raw call, decided
  // before its payload (which names the session) is parsed.
  absl::StatusOr<const Grant*> Admit(const grpc::CallbackServerContext& context,
                                     Access access) const;
  // Admit, then Authorize: for CreateSession and DeleteSession, whose
  // session need not exist.
  absl::Status Admit(const grpc::CallbackServerContext& context, Access access,
                     absl::string_view session_id) const;
  // PERMISSION_DENIED unless `grant` allows `access` to `session_id`.
  // Denials are logged (never the token).
  absl::Status Authorize(const grpc::CallbackServerContext& context,
                         const Grant& grant, Access access,
                         absl::string_view session_id) const;

  // The opening of every call on one existing session: Admit, Authorize
  // `access` to `session_id`, then find the session (NOT_FOUND). The second
  // form starts from a grant that Admit(context, access) gave before the
  // request was parsed (the raw calls), or Admit(context) (GetMetrics).
  struct OpenedSession {
    const Grant* grant;
    std::shared_ptr<Session> session;
  };
  absl::StatusOr<OpenedSession> OpenSession(
      const grpc::CallbackServerContext& context, Access access,
      const std::string& session_id) const;
  absl::StatusOr<OpenedSession> OpenSession(
      const grpc::CallbackServerContext& context, const Grant& grant,
      Access access, const std::string& session_id) const;

  // SubmitGradient and SubmitJacobianProducts: `products` picks the
  // request's message and the session's call.
  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer& request,
                                   grpc::ByteBuffer* response, bool products);
  // A call answered now, without waiting: `status` as its gRPC status.
  static grpc::ServerUnaryReactor* Finished(
      grpc::CallbackServerContext* context, const absl::Status& status);
  void Log(absl::string_view line) const;

  SessionRegistry* const registry_;
  const LogSink log_;
  Authorizer authorizer_ = Authorizer::Open();
  std::atomic<bool> shutting_down_{false};
  mutable absl::Mutex shutdown_mu_;
  absl::Status shutdown_status_ ABSL_GUARDED_BY(shutdown_mu_);
  internal::ReactorCount reactors_;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_GAME_OPTIMIZER_SERVICE_H_
