# docker/script_log.sh: progress and exit helpers of the container test
# scripts (docker/test.sh, tests/docker/deb_test.sh). Source it from bash
# after setting $log_tag (the name printed in front of each line):
#   say TEXT    a line with the seconds since the script started
#   stage TEXT  the same, with the previous stage's duration
#   skip TEXT   "SKIP: TEXT" and exit 0 (ctest's SKIP_REGULAR_EXPRESSION)
#   die TEXT    "FAIL: TEXT" on stderr and exit 1
started=$(date +%s)
stage_started=$started
say() { echo "[$log_tag +$(($(date +%s) - started))s] $*"; }
stage() {
  local now
  now=$(date +%s)
  say "-- $* (previous stage $((now - stage_started)) s)"
  stage_started=$now
}
skip() { echo "SKIP: $*"; exit 0; }
die() { echo "FAIL: $*" >&2; exit 1; }
