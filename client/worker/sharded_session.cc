#include "client/worker/sharded_session.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/worker/sharded_worker.h"
#include "client/worker/task_link.h"

namespace gameopt {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(200);
constexpr absl::Duration kCallTimeout = absl::Seconds(60);

std::unique_ptr<v1::GameOptimizer::Stub> Stub(
    const std::shared_ptr<grpc::Channel>& channel) {
  return v1::GameOptimizer::NewStub(channel);
}

absl::Status NoServers() {
  return absl::InvalidArgumentError("an experiment needs at least one server");
}

}  // namespace

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    items.emplace_back(absl::StripAsciiWhitespace(item));
  }
  return items;
}

ShardedSession::ShardedSession(
    std::vector<std::shared_ptr<grpc::Channel>> channels,
    std::vector<PlayerSpec> players, std::vector<std::string> ids)
    : channels_(std::move(channels)),
      players_(std::move(players)),
      ids_(std::move(ids)) {}

std::string ShardedSession::id() const { return absl::StrJoin(ids_, ","); }

absl::StatusOr<ShardedSession> ShardedSession::Create(
    std::vector<std::shared_ptr<grpc::Channel>> channels, const Game& game,
    const v1::SessionConfig& config, absl::Duration wait,
    const std::vector<std::string>& ids) {
  const int n = static_cast<int>(channels.size());
  if (n == 0) return NoServers();
  if (!ids.empty() && static_cast<int>(ids.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("one session id per server: got ", ids.size(), " ids (",
                     absl::StrJoin(ids, ","), ") for ", n, " servers"));
  }
  std::vector<v1::SessionConfig> configs = {config};
  if (n > 1) {
    absl::StatusOr<ShardPlan> plan = ShardPlan::Create(game.players(), n);
    if (!plan.ok()) return plan.status();
    absl::StatusOr<std::vector<v1::SessionConfig>> sharded =
        ShardSessionConfigs(config, *plan);
    if (!sharded.ok()) return sharded.status();
    configs = *std::move(sharded);
  }
  ShardedSession session(channels, game.players(), {});
  for (int s = 0; s < n; ++s) {
    v1::CreateSessionRequest request;
    *request.mutable_config() = configs[s];
    if (!ids.empty()) request.set_session_id(ids[s]);
    v1::CreateSessionResponse response;
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(absl::ToChronoTime(absl::Now() + wait));
    absl::Status status = FromGrpcStatus(
        Stub(channels[s])->CreateSession(&context, request, &response));
    if (!status.ok()) {
      session.Delete().IgnoreError();
      if (n == 1) return status;
      return absl::Status(status.code(),
                          absl::StrCat("shard ", s, ": ", status.message()));
    }
    session.ids_.push_back(response.session_id());
  }
  return session;
}

absl::StatusOr<ShardedSession> ShardedSession::Open(
    std::vector<std::shared_ptr<grpc::Channel>> channels, const Game& game,
    std::vector<std::string> ids) {
  if (channels.empty()) return NoServers();
  if (ids.size() != channels.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "one session id per server: got ", ids.size(), " ids (",
        absl::StrJoin(ids, ","), ") for ", channels.size(), " servers"));
  }
  if (channels.size() > 1) {
    absl::StatusOr<ShardPlan> plan =
        ShardPlan::Create(game.players(), static_cast<int>(channels.size()));
    if (!plan.ok()) return plan.status();
  }
  return ShardedSession(std::move(channels), game.players(), std::move(ids));
}

absl::StatusOr<ShardedSession> ShardedSession::OpenByName(
    std::vector<std::shared_ptr<grpc::Channel>> channels, const Game& game,
    const std::string& name, absl::Duration wait) {
  const absl::Time give_up = absl::Now() + wait;
  std::vector<std::string> ids(channels.size());
  absl::Status last = absl::NotFoundError("no server asked");
  for (size_t s = 0; s < channels.size(); ++s) {
    while (ids[s].empty()) {
      v1::ListSessionsResponse response;
      grpc::ClientContext context;
      context.set_wait_for_ready(true);
      context.set_deadline(absl::ToChronoTime(absl::Now() + kPollInterval * 5));
      last = FromGrpcStatus(
          Stub(channels[s])
              ->ListSessions(&context, v1::ListSessionsRequest(), &response));
      std::vector<std::string> found;
      if (last.ok()) {
        for (const v1::SessionStatus& status : response.sessions()) {
          if (status.config().name() == name && !status.done()) {
            found.push_back(status.session_id());
          }
        }
      }
      if (found.size() > 1) {
        return absl::FailedPreconditionError(absl::StrCat(
            "server ", s, " holds ", found.size(),
            " unfinished sessions named '", name, "' (",
            absl::StrJoin(found, ", "), "): pass the session id instead"));
      }
      if (found.size() == 1) {
        ids[s] = found[0];
        break;
      }
      if (absl::Now() + kPollInterval > give_up) {
        return absl::NotFoundError(absl::StrCat(
            "no unfinished session named '", name, "' on server ", s, " after ",
            absl::FormatDuration(wait),
            last.ok() ? ""
                      : absl::StrCat(" (last error: ", last.ToString(), ")")));
      }
      absl::SleepFor(kPollInterval);
    }
  }
  return Open(std::move(channels), game, std::move(ids));
}

absl::Status ShardedSession::RunWorker(Game* game,
                                       const WorkerOptions& options) const {
  return ShardedWorker(channels_, ids_, game, options).Run();
}

absl::StatusOr<SessionParameters> ShardedSession::GetParameters() const {
  SessionParameters out;
  const FlatLayout layout(players_);
  out.values = Eigen::VectorXd::Zero(layout.dimension());
  absl::StatusOr<ShardPlan> plan = ShardPlan::Create(players_, num_shards());
  if (!plan.ok()) return plan.status();
  Eigen::VectorXd slice;
  for (int s = 0; s < num_shards(); ++s) {
    v1::GetParametersRequest request;
    request.set_session_id(ids_[s]);
    v1::GetParametersResponse response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
    absl::Status status = FromGrpcStatus(
        Stub(channels_[s])->GetParameters(&context, request, &response));
    if (!status.ok()) return status;
    if (s == 0) out.step = response.step();
    if (num_shards() == 1) {
      status = DecodeVector(response.params(), layout, out.values);
    } else {
      const FlatLayout& shard_layout = plan->shard_layout(s);
      slice = Eigen::VectorXd::Zero(shard_layout.dimension());
      status = DecodeVector(response.params(), shard_layout, slice);
      if (status.ok()) plan->Scatter(s, slice, out.values);
    }
    if (!status.ok()) return status;
  }
  return out;
}

absl::Status ShardedSession::Delete() const {
  absl::Status first;
  for (int s = 0; s < num_shards(); ++s) {
    v1::DeleteSessionRequest request;
    request.set_session_id(ids_[s]);
    v1::DeleteSessionResponse response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
    first.Update(FromGrpcStatus(
        Stub(channels_[s])->DeleteSession(&context, request, &response)));
  }
  return first;
}

}  // namespace gameopt
