// ParamsCache: the parameters of one version are encoded once for every
// worker that gets them in a compressed wire format (TaskToWire): the
// last few encodings, by vector and version (a session never changes the
// values of a version it has handed out).
//
// An entry lives while its vector does, and no longer than the next
// version of the same vector: a session writes its parameters in place
// when nothing else holds them (TypedAlgorithm::MutableX), so an older
// version's values are gone, and a task that still holds them holds
// another vector (copied on write). Keeping those entries held up to three
// stale parameter-sized encodings (conopt/16M/4/bf16 peak 740 -> 640 MiB).
#ifndef GAMEOPT_SERVER_SERVICE_PARAMS_CACHE_H_
#define GAMEOPT_SERVER_SERVICE_PARAMS_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/core/config.h"
#include "server/core/flat_vector.h"
#include "server/core/layout.h"
#include "server/core/wire_vector.h"

namespace gameopt {

class ParamsCache {
 public:
  // The encoding of `params` (version `version`) in `compression`: the
  // cached one, or made now (EncodeVector, nearest-even) and cached.
  std::shared_ptr<const EncodedVector> Get(
      const std::shared_ptr<const FlatVector>& params, int64_t version,
      Compression compression, const GameLayout& layout);
  // How many encodings of the vector `params` are cached (for tests).
  int EncodingsOf(const FlatVector* params) const;

 private:
  static constexpr size_t kEntries = 4;
  struct Entry {
    std::weak_ptr<const FlatVector> values;
    int64_t version;
    Compression compression;
    std::shared_ptr<const EncodedVector> encoded;
  };
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// The one the service's TaskToWire uses.
ParamsCache& GlobalParamsCache();

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_PARAMS_CACHE_H_
