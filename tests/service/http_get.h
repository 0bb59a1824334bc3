// A test's HTTP client for the server's metrics listener (/metrics and the
// live page's JSON): GET over a plain loopback socket.
#ifndef GAMEOPT_TESTS_SERVICE_HTTP_GET_H_
#define GAMEOPT_TESTS_SERVICE_HTTP_GET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace gameopt {
namespace testing {

// The body of GET http://127.0.0.1:port/path (HTTP/1.0: the server closes
// the connection after the body), or "" when nothing answered. A reply
// other than 200 is a test failure naming its status line.
inline std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
      0) {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if (write(fd, request.data(), request.size()) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
        reply.append(buffer, n);
      }
    }
  }
  close(fd);
  const size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) return "";
  EXPECT_NE(reply.substr(0, reply.find("\r\n")).find(" 200 "),
            std::string::npos)
      << "GET " << path << ": " << reply.substr(0, body);
  return reply.substr(body + 4);
}

}  // namespace testing
}  // namespace gameopt

#endif  // GAMEOPT_TESTS_SERVICE_HTTP_GET_H_
