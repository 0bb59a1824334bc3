// A quiet GameOptServer on 127.0.0.1:<free port> for one client test.
#ifndef GAMEOPT_TESTS_CLIENT_LOCAL_SERVER_H_
#define GAMEOPT_TESTS_CLIENT_LOCAL_SERVER_H_

#include <memory>

#include "server/service/server.h"

namespace gameopt {

// Null when the server does not start (the caller asserts).
inline std::unique_ptr<GameOptServer> StartLocalServer() {
  GameOptServerOptions options;
  options.address = "127.0.0.1:0";
  options.log = nullptr;
  auto server = std::make_unique<GameOptServer>(options);
  if (!server->Start().ok()) return nullptr;
  return server;
}

}  // namespace gameopt

#endif  // GAMEOPT_TESTS_CLIENT_LOCAL_SERVER_H_
