#!/usr/bin/env bash
# Installs every Debian package podgauge's build, agent and tests need. Idempotent: when all
# are present it does nothing (and needs no network).
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git
  # BPF: compiler for -target bpf, libbpf, skeleton generator
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  # userspace libraries
  libprotobuf-dev protobuf-compiler nlohmann-json3-dev libcpp-httplib-dev libssl-dev libyaml-cpp-dev
  # tests, fuzzing, benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev
  prometheus stress-ng rt-tests linux-perf busybox-static procps curl
  # vmtests: boot other kernels in qemu with a busybox initramfs
  qemu-system-x86 cpio
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing ${missing[*]} — run as root (or with sudo) to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
