// The fuzz harness of request decoding, validation and the session's apply
// path, without a network: one input is a little script that creates a
// session (from a fuzzed SessionConfig or a built-in small game), then joins,
// leaves, submits valid and fuzzed SubmitGradientRequest /
// SubmitJacobianProductsRequest messages (protobuf-parsed from the input
// and converted with SubmissionFromProto, as the service does), cancels
// calls and passes deadlines on a FakeClock.
//
// Input format: a sequence of records [op: 1 byte][length: 2 bytes,
// little-endian][payload: length bytes] (a length past the end is cut to the
// end). Ops are listed in submission_harness.cc.
//
// Invariants checked (a violation aborts, which libFuzzer reports):
//   - every TaskCallback runs exactly once (pending calls are answered when
//     the session is closed at the end);
//   - every status is one of the documented codes: OK, INVALID_ARGUMENT,
//     NOT_FOUND, FAILED_PRECONDITION, ABORTED, RESOURCE_EXHAUSTED,
//     UNAVAILABLE, CANCELLED;
//   - a submission answered at once with an error leaves the session
//     (SessionInfo and parameters) exactly as it was;
//   - every task is well-formed (players, sample and probe counts, sizes
//     and dtype of the vectors it carries), rounds and steps never go back,
//     and TaskToWire writes exactly TaskToProto's bytes.
// AddressSanitizer and UBSan (in the fuzz build) catch the rest.
#ifndef GAMEOPT_TESTS_FUZZ_SUBMISSION_HARNESS_H_
#define GAMEOPT_TESTS_FUZZ_SUBMISSION_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gameopt::fuzz {

// Runs one input. Returns 0, or -1 for an input that libFuzzer should not
// add to the corpus (e.g. a config outside the harness's size guards).
int RunSubmissionInput(const uint8_t* data, size_t size);

// A few well-formed inputs (every algorithm, both dtypes, valid and fuzzed
// requests, deadlines, leaves) to start the corpus from. Each is a few
// hundred bytes.
std::vector<std::string> SubmissionSeeds();

}  // namespace gameopt::fuzz

#endif  // GAMEOPT_TESTS_FUZZ_SUBMISSION_HARNESS_H_
