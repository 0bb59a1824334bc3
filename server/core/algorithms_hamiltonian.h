// The factory of algorithms_hamiltonian.cc: L-SVRHG, the loopless
// variance-reduced stochastic Hamiltonian gradient method (AlgorithmKind
// kLSvrhg in config.h; SHGD itself is ConOpt's plan, algorithms.cc).
// Internal to the core; Algorithm::Create calls it.
#ifndef GAMEOPT_SERVER_CORE_ALGORITHMS_HAMILTONIAN_H_
#define GAMEOPT_SERVER_CORE_ALGORITHMS_HAMILTONIAN_H_

#include <memory>

#include "server/core/algorithm.h"

namespace gameopt {

// The algorithm of `config` (validated, kind kLSvrhg). T is the session's
// dtype.
template <typename T>
std::unique_ptr<Algorithm> MakeLSvrhg(const SessionConfig& config,
                                      GameLayout layout);

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_CORE_ALGORITHMS_HAMILTONIAN_H_
