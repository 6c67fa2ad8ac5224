#!/usr/bin/env bash
# Quick start (2): install dependencies, build, and run every test: unit, integration (real
# BPF in the running kernel, real cgroups, real Prometheus), and a short run of every fuzzer.
# Results: test-results/*.json (GoogleTest JSON). Needs root: tests load BPF and make cgroups.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: run as root — the tests load BPF programs and create cgroups" >&2
  exit 1
fi
# Each stage's start, so a slow run shows where its time went.
t0=$SECONDS
stage() { echo "test.sh: [$((SECONDS - t0)) s] $*"; }
stage "install dependencies"
scripts/install-deps.sh
stage "build"
scripts/build.sh
rm -rf test-results && mkdir -p test-results

status=0
stage "ctest"
(cd build && ctest --output-on-failure --timeout 600) || status=1

# The same tests inside qemu on Debian's 6.1 kernel with a pure cgroup v2 hierarchy (memory,
# cpu, io controllers enabled): the paths this host's kernel and hybrid cgroups don't take.
stage "vmtests"
vmtests/run.sh || status=1

# Fuzzers need clang's libFuzzer: a separate build of just the fuzz targets and the parsers they
# fuzz, then every fuzzer for FUZZ_SECONDS, as many at once as there are CPUs.
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
stage "fuzz build"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DPODGAUGE_FUZZ=ON >/dev/null
fuzzers=$(cmake --build build-fuzz --target help | sed -n 's/^\.\.\. \(.*_fuzz\)$/\1/p')
fuzz_pass=0 fuzz_fail=0
[[ -z "$fuzzers" ]] && { echo "fuzz: no fuzz targets found"; status=1; }
if [[ -n "$fuzzers" ]] && ! cmake --build build-fuzz -j"$(nproc)" --target $fuzzers >test-results/fuzz.build.log 2>&1; then
  echo "fuzz: build FAILED — see test-results/fuzz.build.log"; tail -30 test-results/fuzz.build.log
  fuzz_fail=1; status=1; fuzzers=""
fi
stage "fuzz run"
run_fuzzer() {
  local f=$1 exe
  exe=$(find -L build-fuzz -type f -name "$f" -perm -u+x | head -1)
  [[ -n "$exe" ]] || { echo "no executable $f under build-fuzz" >"test-results/fuzz.$f.log"; return 1; }
  "$exe" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 >"test-results/fuzz.$f.log" 2>&1
}
declare -A fuzz_pid=()
set -- $fuzzers
while (($# > 0)); do
  batch=()
  for ((i = 0; i < $(nproc) && $# > 0; i++)); do run_fuzzer "$1" & fuzz_pid[$1]=$!; batch+=("$1"); shift; done
  for f in "${batch[@]}"; do
    if wait "${fuzz_pid[$f]}"; then
      echo "fuzz $f: ${FUZZ_SECONDS}s, no crash ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "test-results/fuzz.$f.log" | grep -o '[0-9]*$') runs)"
      fuzz_pass=$((fuzz_pass + 1))
    else
      echo "fuzz $f: FAILED — see test-results/fuzz.$f.log"; tail -30 "test-results/fuzz.$f.log" || true
      fuzz_fail=$((fuzz_fail + 1)); status=1
    fi
  done
done
echo "fuzz: $fuzz_pass passed, $fuzz_fail failed"
stage "end"
exit $status
