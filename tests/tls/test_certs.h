// Test certificates for TLS tests, made once per test process by
// tests/tls/make_test_certs.sh (the openssl CLI) in a temporary folder.
// Test binaries that include this define GAMEOPT_MAKE_TEST_CERTS as the
// script's path (see tests/service/CMakeLists.txt).
#ifndef GAMEOPT_TESTS_TLS_TEST_CERTS_H_
#define GAMEOPT_TESTS_TLS_TEST_CERTS_H_

#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"

namespace gameopt::testing {

// The script's files: ca.pem, server.pem/.key (127.0.0.1, localhost),
// client.pem/.key (signed by ca.pem), other-ca.pem (signed nothing).
class TestCerts {
 public:
  static const TestCerts& Get() {
    static const TestCerts* const certs = new TestCerts();
    return *certs;
  }
  // False when the folder or the certificates could not be made.
  bool ok() const { return ok_; }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  TestCerts() {
    std::string pattern = ::testing::TempDir() + "/gameopt-tls-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) return;
    dir_ = pattern;
    const std::string command =
        std::string(GAMEOPT_MAKE_TEST_CERTS) + " " + dir_;
    ok_ = std::system(command.c_str()) == 0;
  }
  std::string dir_;
  bool ok_ = false;
};

inline std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteTestFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace gameopt::testing

#endif  // GAMEOPT_TESTS_TLS_TEST_CERTS_H_
