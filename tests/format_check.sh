#!/usr/bin/env bash
# Fails, listing them, when tracked C++ files drift from .clang-format
# (fix with: git ls-files '*.cc' '*.h' | xargs clang-format -i). Skips
# outside a git checkout or without clang-format (tests/install_deps.sh
# installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "SKIP: no clang-format"; exit 0; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
  { echo "SKIP: not a git checkout"; exit 0; }
files() { git ls-files -z '*.cc' '*.h' | grep -zv node_modules; }
# One clang-format for all files (a process per file costs seconds of
# start-up); only when it finds drift, one per file to name them.
files | xargs -0 clang-format --dry-run -Werror >/dev/null 2>&1 &&
  { echo "every tracked C++ file follows .clang-format"; exit 0; }
drift=()
while IFS= read -r -d '' file; do
  clang-format --dry-run -Werror "$file" >/dev/null 2>&1 || drift+=("$file")
done < <(files)
if [ ${#drift[@]} -gt 0 ]; then
  echo "FAIL: ${#drift[@]} files drift from .clang-format:"
  printf '  %s\n' "${drift[@]}"
  exit 1
fi
echo "FAIL: clang-format failed, but on no single file"
exit 1
