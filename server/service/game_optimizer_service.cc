#include "server/service/game_optimizer_service.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/core/quote.h"
#include "server/service/grpc_status.h"
#include "server/service/metrics_convert.h"
#include "server/service/proto_convert.h"
#include "server/service/waiting_reactor.h"
#include "server/service/wire_format.h"

namespace gameopt {
namespace {

// One Join / Submit* call that may wait at the round's barrier (lifetime
// and cancellation: waiting_reactor.h).
class TaskReactor final : public internal::WaitingReactor {
 public:
  // Counts `request_bytes` received for the session, and the response's
  // size as sent once answered.
  TaskReactor(std::shared_ptr<Session> session, int64_t known_params_version,
              grpc::ByteBuffer* response, internal::ReactorCount* count,
              int64_t request_bytes)
      : WaitingReactor(std::move(session), count),
        known_params_version_(known_params_version),
        response_(response) {
    this->session().traffic().AddReceived(request_bytes);
  }

  // `call(done, &call_id)` hands the session the callback, e.g.
  // session->SubmitGradient(worker, submission, done, call_id).
  template <typename Call>
  void Start(Call call) {
    CallId id = 0;
    call([this](absl::StatusOr<Task> task) { Answer(std::move(task)); }, &id);
    Started(id);
  }

 private:
  void CancelCall(CallId id) override { session().Cancel(id); }

  // Runs exactly once, from the session, on any thread.
  void Answer(absl::StatusOr<Task> task) {
    if (task.ok()) {
      TaskToWire(*task, session().layout(), known_params_version_, response_,
                 session().config().wire);
      session().traffic().AddSent(static_cast<int64_t>(response_->Length()));
    }
    Finish(ToGrpcStatus(task.status()));
  }

  const int64_t known_params_version_;
  grpc::ByteBuffer* const response_;
};

std::string Describe(const SessionConfig& config, const GameLayout& layout) {
  return absl::StrCat(
      AlgorithmName(config.algorithm.kind), ", ", config.players.size(),
      " players, d = ", layout.dimension(), " ", DTypeName(config.dtype), ", ",
      config.workers_per_round, " worker(s) per round",
      config.max_steps > 0 ? absl::StrCat(", ", config.max_steps, " steps")
                           : "",
      config.name.empty() ? "" : absl::StrCat(" ('", Quote(config.name), "')"));
}

// Who calls for a worker, for the session's binding of workers to tokens.
Caller CallerOf(const Grant& grant) {
  return Caller{grant.identity, grant.role == Role::kAdmin};
}

// The caller's `authorization` metadata (a view into the call's), if any.
std::optional<absl::string_view> AuthorizationHeader(
    const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(Authorizer::kMetadataKey);
  if (it == metadata.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}

// A small message (a JoinSessionRequest) from a raw request.
bool ParseSmall(const grpc::ByteBuffer& buffer,
                google::protobuf::MessageLite* out) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string joined;
  for (const grpc::Slice& slice : slices) {
    joined.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out->ParseFromString(joined);
}

}  // namespace

namespace internal {

void ReactorCount::Add() {
  absl::MutexLock lock(&mu_);
  ++live_;
}

void ReactorCount::Remove() {
  absl::MutexLock lock(&mu_);
  --live_;
}

int64_t ReactorCount::live() const {
  absl::MutexLock lock(&mu_);
  return live_;
}

bool ReactorCount::AwaitZero(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto zero = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&zero), timeout);
}

}  // namespace internal

GameOptimizerService::GameOptimizerService(SessionRegistry* registry,
                                           LogSink log)
    : registry_(registry), log_(std::move(log)) {}

void GameOptimizerService::StartShutdown(absl::Status why) {
  absl::MutexLock lock(&shutdown_mu_);
  if (shutting_down_.load()) return;
  shutdown_status_ = std::move(why);
  shutting_down_.store(true);
}

int64_t GameOptimizerService::live_reactors() const { return reactors_.live(); }

bool GameOptimizerService::AwaitNoReactors(absl::Duration timeout) const {
  return reactors_.AwaitZero(timeout);
}

absl::StatusOr<const Grant*> GameOptimizerService::Admit(
    const grpc::CallbackServerContext& context) const {
  if (shutting_down_.load()) {
    absl::MutexLock lock(&shutdown_mu_);
    return shutdown_status_;
  }
  absl::StatusOr<const Grant*> grant =
      authorizer_.Authenticate(AuthorizationHeader(context));
  if (!grant.ok()) {
    Log(absl::StrCat("refused a call from ", context.peer(), ": ",
                     grant.status().message()));
  }
  return grant;
}

absl::StatusOr<const Grant*> GameOptimizerService::Admit(
    const grpc::CallbackServerContext& context, Access access) const {
  absl::StatusOr<const Grant*> grant = Admit(context);
  if (!grant.ok()) return grant;
  if (absl::Status s = (*grant)->AllowsSome(access); !s.ok()) {
    Log(absl::StrCat("denied a call from ", context.peer(), ": ", s.message()));
    return s;
  }
  return grant;
}

absl::Status GameOptimizerService::Admit(
    const grpc::CallbackServerContext& context, Access access,
    absl::string_view session_id) const {
  absl::StatusOr<const Grant*> grant = Admit(context);
  if (!grant.ok()) return grant.status();
  return Authorize(context, **grant, access, session_id);
}

absl::Status GameOptimizerService::Authorize(
    const grpc::CallbackServerContext& context, const Grant& grant,
    Access access, absl::string_view session_id) const {
  absl::Status status = grant.Allows(access, session_id);
  if (!status.ok()) {
    Log(absl::StrCat("denied a call from ", context.peer(), ": ",
                     status.message()));
  }
  return status;
}

absl::StatusOr<GameOptimizerService::OpenedSession>
GameOptimizerService::OpenSession(const grpc::CallbackServerContext& context,
                                  Access access,
                                  const std::string& session_id) const {
  absl::StatusOr<const Grant*> grant = Admit(context);
  if (!grant.ok()) return grant.status();
  return OpenSession(context, **grant, access, session_id);
}

absl::StatusOr<GameOptimizerService::OpenedSession>
GameOptimizerService::OpenSession(const grpc::CallbackServerContext& context,
                                  const Grant& grant, Access access,
                                  const std::string& session_id) const {
  if (absl::Status s = Authorize(context, grant, access, session_id); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::shared_ptr<Session>> session = registry_->Get(session_id);
  if (!session.ok()) return session.status();
  return OpenedSession{&grant, *std::move(session)};
}

grpc::ServerUnaryReactor* GameOptimizerService::Finished(
    grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

void GameOptimizerService::Log(absl::string_view line) const {
  if (log_) log_(line);
}

grpc::ServerUnaryReactor* GameOptimizerService::CreateSession(
    grpc::CallbackServerContext* context,
    const v1::CreateSessionRequest* request,
    v1::CreateSessionResponse* response) {
  if (absl::Status s = Admit(*context, Access::kManage, request->session_id());
      !s.ok()) {
    return Finished(context, s);
  }
  absl::StatusOr<SessionConfig> config =
      SessionConfigFromProto(request->config());
  if (!config.ok()) return Finished(context, config.status());
  absl::StatusOr<std::shared_ptr<Session>> session =
      registry_->Create(*std::move(config), request->session_id());
  if (!session.ok()) return Finished(context, session.status());
  const Session& created = **session;
  response->set_session_id(created.id());
  Log(absl::StrCat("session ", created.id(), ": created (",
                   Describe(created.config(), created.layout()), ") by ",
                   context->peer()));
  return Finished(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* GameOptimizerService::GetSession(
    grpc::CallbackServerContext* context, const v1::GetSessionRequest* request,
    v1::SessionStatus* response) {
  absl::StatusOr<OpenedSession> opened =
      OpenSession(*context, Access::kRead, request->session_id());
  if (!opened.ok()) return Finished(context, opened.status());
  SessionStatusToProto(opened->session->Info(), opened->session->config(),
                       response);
  return Finished(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* GameOptimizerService::ListSessions(
    grpc::CallbackServerContext* context,
    const v1::ListSessionsRequest* request,
    v1::ListSessionsResponse* response) {
  absl::StatusOr<const Grant*> grant = Admit(*context);
  if (!grant.ok()) return Finished(context, grant.status());
  for (const std::shared_ptr<Session>& session : registry_->List()) {
    if (!(*grant)->MaySee(session->id())) continue;
    SessionStatusToProto(session->Info(), session->config(),
                         response->add_sessions());
  }
  return Finished(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* GameOptimizerService::DeleteSession(
    grpc::CallbackServerContext* context,
    const v1::DeleteSessionRequest* request,
    v1::DeleteSessionResponse* response) {
  if (absl::Status s = Admit(*context, Access::kManage, request->session_id());
      !s.ok()) {
    return Finished(context, s);
  }
  absl::Status status = registry_->Delete(request->session_id());
  if (status.ok()) {
    Log(absl::StrCat("session ", Quote(request->session_id()), ": deleted by ",
                     context->peer()));
  }
  return Finished(context, status);
}

grpc::ServerUnaryReactor* GameOptimizerService::JoinSession(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  // Authenticated and the role checked before parsing, like the submits.
  absl::StatusOr<const Grant*> grant = Admit(*context, Access::kWork);
  if (!grant.ok()) return Finished(context, grant.status());
  v1::JoinSessionRequest parsed;
  if (!ParseSmall(*request, &parsed)) {
    return Finished(context, absl::InvalidArgumentError(
                                 "the request is not a JoinSessionRequest"));
  }
  absl::StatusOr<OpenedSession> opened =
      OpenSession(*context, **grant, Access::kWork, parsed.session_id());
  if (!opened.ok()) return Finished(context, opened.status());
  // A reply that could not be sent would leave a worker that never got
  // its id: refused before it is added.
  if (absl::Status s = registry_->TasksFit(*opened->session); !s.ok()) {
    return Finished(context, s);
  }
  auto* reactor =
      new TaskReactor(opened->session, parsed.known_params_version(), response,
                      &reactors_, static_cast<int64_t>(request->Length()));
  reactor->Start([&](TaskCallback done, CallId* call) {
    opened->session->Join(parsed.worker_id(), parsed.worker_name(),
                          std::move(done), call, parsed.resume_by_name(),
                          CallerOf(**grant));
  });
  return reactor;
}

grpc::ServerUnaryReactor* GameOptimizerService::SubmitGradient(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Submit(context, *request, response, /*products=*/false);
}

grpc::ServerUnaryReactor* GameOptimizerService::SubmitJacobianProducts(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Submit(context, *request, response, /*products=*/true);
}

grpc::ServerUnaryReactor* GameOptimizerService::Submit(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer& request,
    grpc::ByteBuffer* response, bool products) {
  // Authenticated and the role checked before the payload is parsed; the
  // session it names right after, before anything is looked up.
  absl::StatusOr<const Grant*> grant = Admit(*context, Access::kWork);
  if (!grant.ok()) return Finished(context, grant.status());
  WireSubmission wire;
  if (absl::Status s =
          wire.Parse(request, products ? WireSubmission::Kind::kProducts
                                       : WireSubmission::Kind::kGradient);
      !s.ok()) {
    return Finished(context, s);
  }
  absl::StatusOr<OpenedSession> opened =
      OpenSession(*context, **grant, Access::kWork, wire.session_id());
  if (!opened.ok()) return Finished(context, opened.status());
  Submission submission;
  if (absl::Status s = wire.ToSubmission(&submission); !s.ok()) {
    return Finished(context, s);
  }
  submission.keep_alive = wire.ShareSlices();
  Session& session = *opened->session;
  auto* reactor = new TaskReactor(
      std::move(opened->session), wire.known_params_version(), response,
      &reactors_, static_cast<int64_t>(request.Length()));
  const Caller caller = CallerOf(**grant);
  reactor->Start([&](TaskCallback done, CallId* call) {
    if (products) {
      session.SubmitProducts(wire.worker_id(), submission, std::move(done),
                             call, caller);
    } else {
      session.SubmitGradient(wire.worker_id(), submission, std::move(done),
                             call, caller);
    }
  });
  // The session decoded the views into its own buffers during the call
  // above, or kept the sample where it is (holding the slices
  // through submission.keep_alive); gRPC's references to the request's
  // slices (a whole gradient) would otherwise stay alive until the round
  // closes and the reactor finishes. gRPC owns the request and destroys it
  // after Finish: a cleared ByteBuffer is empty.
  const_cast<grpc::ByteBuffer&>(request).Clear();
  return reactor;
}

grpc::ServerUnaryReactor* GameOptimizerService::LeaveSession(
    grpc::CallbackServerContext* context,
    const v1::LeaveSessionRequest* request,
    v1::LeaveSessionResponse* response) {
  absl::StatusOr<OpenedSession> opened =
      OpenSession(*context, Access::kWork, request->session_id());
  if (!opened.ok()) return Finished(context, opened.status());
  return Finished(context, opened->session->Leave(request->worker_id(),
                                                  CallerOf(*opened->grant)));
}

grpc::ServerUnaryReactor* GameOptimizerService::Heartbeat(
    grpc::CallbackServerContext* context, const v1::HeartbeatRequest* request,
    v1::HeartbeatResponse* response) {
  absl::StatusOr<OpenedSession> opened =
      OpenSession(*context, Access::kWork, request->session_id());
  if (!opened.ok()) return Finished(context, opened.status());
  absl::StatusOr<WorkerState> state = opened->session->Heartbeat(
      request->worker_id(), CallerOf(*opened->grant));
  if (!state.ok()) return Finished(context, state.status());
  const absl::Duration lease = opened->session->config().worker_lease;
  response->set_worker_lease_seconds(
      lease == absl::InfiniteDuration() ? -1.0 : absl::ToDoubleSeconds(lease));
  response->set_state(WorkerStateName(*state));
  response->set_worker_state(WorkerStateToProto(*state));
  return Finished(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* GameOptimizerService::GetParameters(
    grpc::CallbackServerContext* context,
    const v1::GetParametersRequest* request,
    v1::GetParametersResponse* response) {
  absl::StatusOr<OpenedSession> opened =
      OpenSession(*context, Access::kRead, request->session_id());
  if (!opened.ok()) return Finished(context, opened.status());
  ParametersToProto(opened->session->Parameters(), opened->session->layout(),
                    response);
  TrafficCounters& traffic = opened->session->traffic();
  traffic.AddReceived(static_cast<int64_t>(request->ByteSizeLong()));
  traffic.AddSent(static_cast<int64_t>(response->ByteSizeLong()));
  return Finished(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* GameOptimizerService::GetMetrics(
    grpc::CallbackServerContext* context, const v1::GetMetricsRequest* request,
    v1::GetMetricsResponse* response) {
  // Like GetSession for one id; like ListSessions (the sessions the token
  // may see) for all.
  absl::StatusOr<const Grant*> grant = Admit(*context);
  if (!grant.ok()) return Finished(context, grant.status());
  std::vector<std::shared_ptr<Session>> sessions;
  if (request->session_id().empty()) {
    for (std::shared_ptr<Session>& session : registry_->List()) {
      if ((*grant)->MaySee(session->id())) sessions.push_back(session);
    }
  } else {
    absl::StatusOr<OpenedSession> opened =
        OpenSession(*context, **grant, Access::kRead, request->session_id());
    if (!opened.ok()) return Finished(context, opened.status());
    sessions.push_back(std::move(opened->session));
  }
  for (const std::shared_ptr<Session>& session : sessions) {
    SessionMetricsToProto(session->Info(), session->config(),
                          response->add_sessions());
  }
  return Finished(context, absl::OkStatus());
}

}  // namespace gameopt
