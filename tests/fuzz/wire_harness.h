// The fuzz harness of the hand-written protobuf reader of the hot path
// (server/service/wire_format.h), differential against protobuf itself:
// one input is a serialized SubmitGradientRequest or
// SubmitJacobianProductsRequest cut into gRPC slices at fuzzed offsets.
//
// Input format: [flags: 1 byte: bit 0 products, bits 1-3 the number n of
// cuts][n cut offsets: 2 bytes each, little-endian, modulo the message
// length][the message bytes].
//
// Invariants (a violation aborts, which libFuzzer reports):
//   - WireSubmission::Parse accepts exactly what protobuf's ParseFromString
//     accepts, whatever the slicing (corners included: unknown groups,
//     tags in 5 bytes, overlong varints, strings that are not UTF-8);
//   - then both give the same session id, worker id, known version, and
//     ToSubmission and SubmissionFromProto the same status and the same
//     Submission (round, step, phase, every sample's players, tensor
//     names, dtypes, shapes and bytes, however the bytes are split);
//   - DecodeSample of each sample (against the seeds' game, both dtypes)
//     gives the same status and values from the slices' pieces as from
//     protobuf's contiguous bytes;
//   - a parse error is INVALID_ARGUMENT.
#ifndef GAMEOPT_TESTS_FUZZ_WIRE_HARNESS_H_
#define GAMEOPT_TESTS_FUZZ_WIRE_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gameopt::fuzz {

int RunWireInput(const uint8_t* data, size_t size);

// The invariants' check without aborting: "" when they hold, else what was
// violated. `accepted` (optional) gets whether protobuf accepts the
// message (false for an input too short to hold one).
std::string CheckWireInput(const uint8_t* data, size_t size,
                           bool* accepted = nullptr);

// Valid requests (packed and unpacked shapes, both kinds, unknown fields,
// cut into slices) to start the corpus from.
std::vector<std::string> WireSeeds();

}  // namespace gameopt::fuzz

#endif  // GAMEOPT_TESTS_FUZZ_WIRE_HARNESS_H_
