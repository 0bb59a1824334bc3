// Shared helpers of the TLS and authorization tests (tls_auth_test.cc,
// tls_server_test.cc): a tokens file, TLS server options and stubs over the
// test certificates (tests/tls/test_certs.h), one minimal call of every RPC,
// and a capture of the server's log.
//
// Calls are made with raw gRPC (SslCredentials, ClientContext::AddMetadata),
// not the client library, so the tests check the wire contract itself:
// `authorization: Bearer <token>`.
#ifndef GAMEOPT_TESTS_SERVICE_TLS_TEST_UTIL_H_
#define GAMEOPT_TESTS_SERVICE_TLS_TEST_UTIL_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gameopt/v1/gameopt.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/service/server.h"

namespace gameopt::testing {

inline constexpr char kAdminToken[] = "admin-token-0123456789";
inline constexpr char kWorkerToken[] = "worker-token-0123456789";
inline constexpr char kReaderToken[] = "reader-token-0123456789";
// The session the worker and reader tokens name, and one they do not.
inline constexpr char kMine[] = "mine";
inline constexpr char kOther[] = "other";

// The tokens file: an admin, a worker of kMine and a reader of kMine.
const std::string& TokensFile();
// TestServerOptions with TLS (the test server certificate) and TokensFile.
GameOptServerOptions TlsOptions();
// A stub over TLS trusting `roots` (a file of TestCerts), optionally
// presenting the client certificate.
std::unique_ptr<v1::GameOptimizer::Stub> TlsStub(
    int port, const std::string& roots = "ca.pem", bool client_cert = false);
// A context with a 10 s deadline and, unless empty, the bearer token.
std::unique_ptr<grpc::ClientContext> Context(const std::string& token);

// Every RPC of gameopt.v1.GameOptimizer by name, called on `session` with a
// minimal request: enough to pass or fail authorization, which comes first.
// CreateSession creates "<session>-new".
using Rpc =
    std::function<grpc::Status(v1::GameOptimizer::Stub&, grpc::ClientContext*,
                               const std::string& session)>;
const std::map<std::string, Rpc>& Rpcs();

// The server's log lines. Thread-safe.
class LogCapture {
 public:
  LogSink Sink();
  std::string Text() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// No log line may hold a token, whatever was denied or allowed.
void ExpectNoTokenIn(const std::string& log);

}  // namespace gameopt::testing

#endif  // GAMEOPT_TESTS_SERVICE_TLS_TEST_UTIL_H_
