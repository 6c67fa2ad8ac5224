#!/usr/bin/env bash
# Packs a self-contained initramfs (cpio newc + gzip) that runs podgauge's tests on boot:
# busybox-static, vmtests/init, podgauge, every unit and integration test binary, the test
# helpers, prometheus + promtool, and every shared library they load (resolved with ldd).
#
#   vmtests/build-initramfs.sh BUILD_DIR OUTPUT.cpio.gz
set -euo pipefail

die() { echo "build-initramfs: $*" >&2; exit 1; }
(($# == 2)) || die "usage: $0 BUILD_DIR OUTPUT.cpio.gz"
build=$(realpath "$1")
out=$(realpath -m "$2")
here=$(dirname "$(realpath "$0")")

[[ -x $build/userspace/podgauge ]] ||
  die "$build/userspace/podgauge is missing — build first: cmake -S . -B build && cmake --build build"
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  die "$busybox is not the static busybox — install it: apt-get install busybox-static"
for tool in cpio gzip ldd; do
  command -v "$tool" >/dev/null || die "$tool is missing — install it: apt-get install cpio gzip libc-bin"
done

root=$(mktemp -d "${TMPDIR:-/tmp}/podgauge-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,results} \
         "$root"/podgauge/{bin,unit,integration,helpers} "$root"/usr/bin
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
done
cp "$here/init" "$root/init"
chmod 755 "$root/init"

# What runs inside. Paths are fixed so the guest's init needs no discovery.
elfs=()
add() {  # add SRC DEST_DIR_IN_ROOT
  cp -L "$1" "$root/$2/"
  # Debug info is most of a test binary's size; symbols stay for backtraces.
  command -v strip >/dev/null && strip --strip-debug "$root/$2/$(basename "$1")" 2>/dev/null || true
  elfs+=("$1")
}
add "$build/userspace/podgauge" podgauge/bin
# Unit tests of modules that never touch the kernel (API objects, metadata, the store, the
# analysis, exposition and CLI formatting) behave the same on any kernel: they run on the host
# only, which keeps the emulated guest's time for what differs between kernels.
for t in "$build"/tests/*_test; do
  case $(basename "$t") in k8s_* | metadata_* | store_* | analysis_* | exporters_* | cli_*) continue ;; esac
  [[ -x $t ]] && add "$t" podgauge/unit
done
# Host-only, touching no kernel path: kubectl_fakeapi_test proves the fake API server against
# the real kubectl (a large Go binary from the machine image); k8s_informer_test drives the
# Kubernetes client against the fake; agent_kube_test joins the agent with the fake (its kernel
# paths are agent_test's, which runs here); k8s_event_writer_test, k8s_exec_auth_test and
# k8s_cluster_cache_test are API-client tests against the fake (the last also reads
# charts/podgauge). scale_test asks the agent to keep up at 1 s with 250 pods:
# a claim about the host's speed, which an emulated guest cannot meet.
for t in "$build"/tests/integration/*_test; do
  case $(basename "$t") in kubectl_fakeapi_test | k8s_informer_test | agent_kube_test | k8s_event_writer_test | k8s_exec_auth_test | k8s_cluster_cache_test | scale_test) continue ;; esac
  [[ -x $t ]] && add "$t" podgauge/integration
done
for h in "$build"/tests/integration/helpers/*; do [[ -x $h && -f $h ]] && add "$h" podgauge/helpers; done
# Test fixtures; init points the tests at them with PODGAUGE_FIXTURES_DIR.
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/podgauge"
cp -r "$src/tests/fixtures" "$root/podgauge/fixtures"
# The chart (least_privilege_test reads its capability list); init sets PODGAUGE_CHART_DIR.
cp -r "$src/charts/podgauge" "$root/podgauge/chart"
# The Prometheus tests use the real server and promtool at their Debian paths.
for p in /usr/bin/prometheus /usr/bin/promtool; do
  [[ -x $p ]] || die "$p is missing — install it: apt-get install prometheus"
  add "$p" usr/bin
done
# least_privilege_test runs the agent with a reduced capability bounding set, and
# cgroup_namespace_test in a cgroup namespace of its own (busybox's applets lack the options).
for p in /usr/bin/setpriv /usr/bin/unshare; do
  [[ -x $p ]] || die "$p is missing — install it: apt-get install util-linux"
  add "$p" usr/bin
done

# Shared libraries (and the dynamic loader) at the paths ldd resolves them to.
declare -A libs=()
for e in "${elfs[@]}"; do
  while read -r lib; do libs[$lib]=1; done < <(ldd "$e" 2>/dev/null | grep -o '/[^ ]*' | sort -u)
done
for lib in "${!libs[@]}"; do
  mkdir -p "$root/$(dirname "$lib")"
  cp -L "$lib" "$root/$lib"
done
# Debian 12 is merged-/usr: ldd says /lib/..., the loader's default search includes /usr/lib/...
[[ -e $root/lib64 ]] || die "no dynamic loader found by ldd"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
echo vmtest >"$root/etc/hostname"

# mktemp made the root 0700: other users in the guest (least_privilege_test runs a process as
# uid 65534) must reach the programs. /tmp is sticky and writable by all, as usual.
chmod 755 "$root"
chmod 1777 "$root/tmp"
mkdir -p "$(dirname "$out")"
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
   cpio --null -o -H newc --owner 0:0 --quiet | gzip -1 >"$out.tmp")
mv "$out.tmp" "$out"
echo "build-initramfs: $out ($(du -h "$out" | cut -f1), ${#elfs[@]} programs, ${#libs[@]} libraries)"
