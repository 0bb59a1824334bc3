// The LLVMFuzzerInitialize of both libFuzzer targets: silences protobuf's
// log (it reports every string field that is not UTF-8) and, with
// GAMEOPT_FUZZ_WRITE_SEEDS=DIR in the environment, writes the harness's
// seeds into DIR as seed-0, seed-1, ... and exits instead of fuzzing.
#ifndef GAMEOPT_TESTS_FUZZ_FUZZ_INIT_H_
#define GAMEOPT_TESTS_FUZZ_FUZZ_INIT_H_

#include <string>
#include <vector>

namespace gameopt::fuzz {

int InitializeFuzzer(const std::vector<std::string>& seeds);

}  // namespace gameopt::fuzz

#endif  // GAMEOPT_TESTS_FUZZ_FUZZ_INIT_H_
