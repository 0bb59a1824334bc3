#include "server/core/clock.h"

namespace gameopt {
namespace {

class WallClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock* RealClock() {
  static const WallClock* const clock = new WallClock;
  return clock;
}

}  // namespace gameopt
