// GAMEOPT_TARGET_CLONES: compile a plain loop once per instruction set
// (SSE2, AVX2, AVX-512) and pick the widest the CPU has at run time, so a
// default build runs on any x86-64 and still uses the machine's vector
// width. Files using it for floating point are compiled with
// -ffp-contract=off (no FMA), so that every width rounds alike.
#ifndef GAMEOPT_SERVER_CORE_TARGET_CLONES_H_
#define GAMEOPT_SERVER_CORE_TARGET_CLONES_H_

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__GLIBC__)
#define GAMEOPT_TARGET_CLONES \
  __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#else
#define GAMEOPT_TARGET_CLONES
#endif

#endif  // GAMEOPT_SERVER_CORE_TARGET_CLONES_H_
