// The command line's game, algorithm and session flags of gameopt_client
// (play, create, work and sweep share them) and the PlayConfig they make.
#ifndef GAMEOPT_CLIENT_PLAY_FLAGS_H_
#define GAMEOPT_CLIENT_PLAY_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "client/play.h"

// Also read by the other commands.
ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, out);
ABSL_DECLARE_FLAG(int, spectrum_k);

namespace gameopt {

// The channel of --tls_roots, --tls_cert, --tls_key and --token (or
// $GAMEOPT_TOKEN).
ChannelOptions ChannelFromFlags();

// The play configuration of the flags; INVALID_ARGUMENT naming the flag
// when one is out of range or unknown.
absl::StatusOr<PlayConfig> ConfigFromFlags();

}  // namespace gameopt

#endif  // GAMEOPT_CLIENT_PLAY_FLAGS_H_
