#!/usr/bin/env bash
# Boots Debian's 6.1 cloud kernel in qemu/KVM on a pure cgroup v2 hierarchy (cpu, memory, io,
# pids enabled) and runs every unit and integration test binary of the build inside.
# Exits 0 only if every test passed; a missing qemu, /dev/kvm or kernel is a failure, not a skip.
#
#   vmtests/run.sh [--kernel VERSION] [--build DIR] [--results DIR] [--filter GTEST_FILTER]
#                  [--only NAME[,NAME...]] [--timeout SECONDS] [--accel auto|kvm|tcg]
#                  [--append KERNEL_ARGS]   (e.g. vmtest.runner_cgroup=NAME, see init)
#
# --kernel: "6.1" (default: the newest 6.1 cloud kernel apt knows, else the newest cached),
#           an ABI such as "6.1.0-57", or a full package name.
# --accel:  auto (default): KVM, except on a kvm_pvm host, where TCG is used; env VMTEST_ACCEL.
set -euo pipefail

here=$(dirname "$(realpath "$0")")
repo=$(dirname "$here")
kernel=6.1 build=$repo/build results="" filter="" only="" timeout_s=600 accel=${VMTEST_ACCEL:-auto} extra_append=""
while (($#)); do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --build) build=$(realpath "$2"); shift 2 ;;
    --results) results=$(realpath -m "$2"); shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --accel) accel=$2; shift 2 ;;
    --append) extra_append=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "vmtests: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
fail() { echo "vmtests: FAIL: $*" >&2; exit 1; }
cache=$here/.cache
mkdir -p "$cache"

# --- what the host must have -------------------------------------------------------------
command -v qemu-system-x86_64 >/dev/null ||
  fail "qemu-system-x86_64 is missing — install it: apt-get install qemu-system-x86"
if [[ $accel == auto ]]; then
  [[ -c /dev/kvm ]] || fail "/dev/kvm does not exist — load kvm_intel/kvm_amd (enable nested virtualisation on a VM host), or run with --accel tcg (slower, no KVM needed)"
  if [[ -d /sys/module/kvm_pvm ]]; then
    # PVM (pagetable-based nested KVM) runs only PVM-enabled guest kernels at speed; a stock
    # Debian kernel needs minutes just to decompress. Emulation is far quicker there.
    echo "vmtests: /dev/kvm is kvm_pvm, which cannot run a stock kernel at speed: using TCG"
    accel=tcg
  else
    accel=kvm
  fi
fi
case $accel in
  kvm)
    [[ -c /dev/kvm ]] || fail "/dev/kvm does not exist — load kvm_intel/kvm_amd (enable nested virtualisation on a VM host), or run with --accel tcg (slow, no KVM needed)"
    [[ -r /dev/kvm && -w /dev/kvm ]] || fail "/dev/kvm is not accessible — run as root or join the kvm group"
    # -arch-capabilities: qemu 7.2 cannot set MSR 0x10a on newer host kernels and aborts.
    accel_args=(-enable-kvm -cpu host,-arch-capabilities) ;;
  tcg)
    # Single-threaded TCG (both vCPUs on one host thread); no /dev/kvm needed. Multi-threaded
    # TCG hung the guest: attaching or detaching a tracepoint patches __schedule with
    # text_poke_bp, and a vCPU inside __schedule (interrupts off) kept trapping on the int3
    # while the patching CPU waited forever for its IPI (soft lockup, 1 run in ~5).
    accel_args=(-accel tcg,thread=${VMTEST_TCG_THREAD:-single},tb-size=512 -cpu max) ;;
  *) fail "--accel must be kvm or tcg" ;;
esac
for t in dpkg-deb cpio gzip base64 tar; do
  command -v "$t" >/dev/null || fail "$t is missing — install it: apt-get install cpio dpkg gzip coreutils tar"
done
[[ -x /bin/busybox ]] || fail "/bin/busybox is missing — install it: apt-get install busybox-static"

# --- the kernel: a Debian package, downloaded once, never installed ------------------------
case $kernel in
  linux-image-*) candidates=$kernel ;;
  *-cloud-amd64) candidates=linux-image-$kernel-unsigned ;;
  *.*.*-*) candidates=linux-image-$kernel-cloud-amd64-unsigned ;;
  *) candidates=$(apt-cache pkgnames "linux-image-$kernel." 2>/dev/null |
                    grep -E "^linux-image-${kernel//./\\.}\.[0-9]+-[0-9]+-cloud-amd64-unsigned$" | sort -V -r || true) ;;
esac
deb=""
for pkg in $candidates; do
  deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | sort -V | tail -1 || true)
  [[ -n $deb ]] && break
  if (cd "$cache" && apt-get download "$pkg" >"$cache/apt-download.log" 2>&1); then
    deb=$(ls "$cache/${pkg}"_*.deb | sort -V | tail -1)
    break
  fi
  echo "vmtests: cannot download $pkg: $(tail -1 "$cache/apt-download.log")" >&2
done
if [[ -z $deb ]]; then  # offline: the newest cached package of that series
  deb=$(ls "$cache"/linux-image-"$kernel"*cloud-amd64-unsigned_*.deb 2>/dev/null | sort -V | tail -1 || true)
fi
[[ -n $deb ]] || fail "no kernel package for '$kernel' — run apt-get update (Debian 12 has
  linux-image-6.1.0-*-cloud-amd64-unsigned), or put the .deb into $cache"
pkg=$(basename "$deb" | cut -d_ -f1)
kdir=$cache/${pkg}
if [[ ! -d $kdir/boot ]]; then
  rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp" && dpkg-deb -x "$deb" "$kdir.tmp" && mv "$kdir.tmp" "$kdir"
fi
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -1)
[[ -n $vmlinuz ]] || fail "no vmlinuz in $deb"
kver=${vmlinuz##*/vmlinuz-}
grep -q '^CONFIG_DEBUG_INFO_BTF=y' "$kdir/boot/config-$kver" || fail "$pkg is built without BTF"
results=${results:-$repo/test-results/vmtests-$kver}

# --- the initramfs from the current build -------------------------------------------------
t0=$EPOCHREALTIME
initrd=$cache/initramfs.cpio.gz
"$here/build-initramfs.sh" "$build" "$initrd"
t_initrd=$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $t0}")

# --- boot ---------------------------------------------------------------------------------
rm -rf "$results" && mkdir -p "$results"
console=$results/console.log archive=$cache/ttyS1.txt
rm -f "$archive"
# A soft lockup panics at once (the VM stops instead of idling to the timeout) and, with
# loglevel 5, the console shows every CPU's stack; "quiet" would hide them.
append="console=ttyS0 loglevel=5 panic=-1 oops=panic softlockup_panic=1 softlockup_all_cpu_backtrace=1"
[[ -n $filter ]] && append+=" vmtest.filter=$filter"
[[ -n $only ]] && append+=" vmtest.only=$only"
[[ -n $extra_append ]] && append+=" $extra_append"
echo "vmtests: booting $pkg ($kver, $accel) with $initrd ($t_initrd s to build), timeout ${timeout_s}s"
t_start=$EPOCHREALTIME t_booted="" result="" timing=""
set +e
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 "${accel_args[@]}" -m 2G -smp 2 \
  -nographic -no-reboot -monitor none -serial stdio -serial "file:$archive" \
  -kernel "$vmlinuz" -initrd "$initrd" -append "$append" </dev/null 2>&1 |
  stdbuf -oL tr -d '\r' | tee "$console" | while IFS= read -r line; do
    echo "$line"
    case $line in
      *"VMTEST BOOTED"*) echo "vmtests: booted after $(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $t_start}") s (host wall clock, qemu start to init)" ;;
    esac
  done
rc=${PIPESTATUS[0]}
set -e
t_total=$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $t_start}")

if [[ -s $archive ]]; then
  sed -n '/^VMTEST-ARCHIVE-BEGIN/,/^VMTEST-ARCHIVE-END/p' "$archive" | sed '1d;$d' |
    base64 -di 2>/dev/null | tar -xz -C "$results" 2>/dev/null ||
    echo "vmtests: could not unpack the results archive from ttyS1" >&2
fi

result=$(grep -a '^VMTEST RESULT:' "$console" | tail -1 || true)
timing=$(grep -a '^VMTEST TIMING' "$console" | tail -1 || true)
echo "vmtests: kernel $kver; initramfs ${t_initrd} s; VM total ${t_total} s; ${timing#VMTEST TIMING }"
echo "vmtests: results in $results (console.log, *.json, *.log, dmesg.txt)"
((rc == 124 || rc == 137)) && fail "the VM did not finish within ${timeout_s}s (see $console)"
[[ -n $result ]] || fail "the VM printed no VMTEST RESULT line (qemu exit $rc; see $console)"
echo "vmtests: $result"
if [[ $result =~ ^VMTEST\ RESULT:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
  ((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] == 0)) || fail "tests failed inside the VM (kernel $kver)"
else
  fail "unparsable result line: $result"
fi
echo "vmtests: PASS on $kver"
