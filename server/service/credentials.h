// The API port's transport security: plaintext, TLS, or mutual TLS, from
// PEM files named by GameOptServerOptions (server.h).
#ifndef GAMEOPT_SERVER_SERVICE_CREDENTIALS_H_
#define GAMEOPT_SERVER_SERVICE_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"

namespace gameopt {

struct TlsFiles {
  std::string cert_file;       // PEM certificate chain; empty = plaintext
  std::string key_file;        // its PEM private key
  std::string client_ca_file;  // PEM roots: require and verify client certs
};

// Insecure credentials when `files.cert_file` is empty; TLS otherwise.
// InvalidArgument naming the option (and gameopt_server's flag) and the
// file when one is missing, unreadable or not PEM, or when the options do
// not go together (a key without a certificate, a client CA without TLS).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ApiCredentials(
    const TlsFiles& files);

// The contents of a PEM file; InvalidArgument naming `what` and `path`.
absl::StatusOr<std::string> ReadPemFile(const std::string& path,
                                        const std::string& what);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_CREDENTIALS_H_
