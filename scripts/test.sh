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

# Fuzzers need clang's libFuzzer: a separate build of just the fuzz targets and the parsers they
# fuzz (-O1, as libFuzzer suggests). It builds on one CPU while the vmtests below keep the other
# busy (qemu emulates one CPU), then every fuzzer runs for FUZZ_SECONDS, as many at once as
# there are CPUs.
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
stage "fuzz build (in the background)"
fuzz_build() {
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DPODGAUGE_FUZZ=ON \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" >/dev/null &&
    fuzzers=$(cmake --build build-fuzz --target help | sed -n 's/^\.\.\. \(.*_fuzz\)$/\1/p') &&
    [[ -n $fuzzers ]] && echo "$fuzzers" >build-fuzz/fuzzers.txt &&
    nice -n 10 cmake --build build-fuzz -j1 --target $fuzzers
}
rm -f build-fuzz/fuzzers.txt
fuzz_build >test-results/fuzz.build.log 2>&1 & fuzz_build_pid=$!

# The same tests inside qemu on Debian's 6.1 kernel with a pure cgroup v2 hierarchy (memory,
# cpu, io controllers enabled): the paths this host's kernel and hybrid cgroups don't take.
stage "vmtests"
vmtests/run.sh || status=1

stage "fuzz build (waiting for it)"
fuzzers="" fuzz_pass=0 fuzz_fail=0
if wait "$fuzz_build_pid"; then
  fuzzers=$(cat build-fuzz/fuzzers.txt)
else
  echo "fuzz: build FAILED (or found no fuzz targets) — see test-results/fuzz.build.log"
  tail -30 test-results/fuzz.build.log
  fuzz_fail=1; status=1
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
