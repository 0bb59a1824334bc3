// The factory of algorithms_momentum.cc: optimistic Adam, extrapolation
// from the past and LEAD (AlgorithmKind in config.h). Internal to the core;
// Algorithm::Create calls it.
#ifndef GAMEOPT_SERVER_CORE_ALGORITHMS_MOMENTUM_H_
#define GAMEOPT_SERVER_CORE_ALGORITHMS_MOMENTUM_H_

#include <memory>

#include "server/core/algorithm.h"

namespace gameopt {

// The algorithm of `config` (validated) when its kind is one of the three,
// else null. T is the session's dtype.
template <typename T>
std::unique_ptr<Algorithm> MakeMomentumAlgorithm(const SessionConfig& config,
                                                 GameLayout layout);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_ALGORITHMS_MOMENTUM_H_
