#include "server/service/params_cache.h"

#include <algorithm>

namespace gameopt {

std::shared_ptr<const EncodedVector> ParamsCache::Get(
    const std::shared_ptr<const FlatVector>& params, int64_t version,
    Compression compression, const GameLayout& layout) {
  {
    absl::MutexLock lock(&mu_);
    for (const Entry& e : entries_) {
      if (e.version == version && e.compression == compression &&
          e.values.lock() == params) {
        return e.encoded;
      }
    }
  }
  std::shared_ptr<const EncodedVector> encoded =
      EncodeVector(*params, layout, compression, Rounding());
  absl::MutexLock lock(&mu_);
  // Gone vectors, and other versions of this one (see the header).
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) {
                                  const auto values = e.values.lock();
                                  return values == nullptr || values == params;
                                }),
                 entries_.end());
  if (entries_.size() >= kEntries) entries_.erase(entries_.begin());
  entries_.push_back(Entry{params, version, compression, encoded});
  return encoded;
}

int ParamsCache::EncodingsOf(const FlatVector* params) const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(std::count_if(
      entries_.begin(), entries_.end(),
      [&](const Entry& e) { return e.values.lock().get() == params; }));
}

ParamsCache& GlobalParamsCache() {
  static ParamsCache* cache = new ParamsCache();
  return *cache;
}

}  // namespace gameopt
