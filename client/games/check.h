// GAMEOPT_GAMES_CHECK: aborts with a message when a programmer error is
// detected (a vector of the wrong size, a minibatch slot that was never
// drawn). Active in every build type, unlike assert(); games are no API
// boundary, so callers (the worker library) validate user input before.
#ifndef GAMEOPT_CLIENT_GAMES_CHECK_H_
#define GAMEOPT_CLIENT_GAMES_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define GAMEOPT_GAMES_CHECK(condition, message)                       \
  do {                                                                \
    if (!(condition)) {                                               \
      std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, \
                   __LINE__, #condition, message);                    \
      std::abort();                                                   \
    }                                                                 \
  } while (false)

#endif  // GAMEOPT_CLIENT_GAMES_CHECK_H_
