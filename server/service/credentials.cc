#include "server/service/credentials.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/server_credentials.h"

namespace gameopt {

absl::StatusOr<std::string> ReadPemFile(const std::string& path,
                                        const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": cannot read '", path, "' (", std::strerror(errno), ")"));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (!absl::StrContains(text.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", path, "' is not a PEM file"));
  }
  return text.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ApiCredentials(
    const TlsFiles& files) {
  if (files.cert_file.empty()) {
    if (!files.key_file.empty() || !files.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls_key_file (--tls_key) and tls_client_ca_file (--tls_client_ca) "
          "need tls_cert_file (--tls_cert)");
    }
    return grpc::InsecureServerCredentials();
  }
  if (files.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file (--tls_cert) needs tls_key_file (--tls_key)");
  }
  absl::StatusOr<std::string> cert =
      ReadPemFile(files.cert_file, "tls_cert_file (--tls_cert)");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key =
      ReadPemFile(files.key_file, "tls_key_file (--tls_key)");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  if (!files.client_ca_file.empty()) {
    absl::StatusOr<std::string> roots = ReadPemFile(
        files.client_ca_file, "tls_client_ca_file (--tls_client_ca)");
    if (!roots.ok()) return roots.status();
    options.pem_root_certs = *std::move(roots);
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace gameopt
