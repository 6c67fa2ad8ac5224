// Pieces shared by the loaders of the BPF families (kernel_probes.cpp, memory_probes.cpp,
// process_probes.cpp):
// libbpf log capture, error texts, links and map iteration. Internal to podgauge_loader.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "podgauge/loader/kernel_probes.h"
#include "cpu.h"  // pg_cgroup_key
#include "stats.h"

namespace podgauge::loader::detail {

// libbpf logs through one global callback; a load captures what it prints on its thread
// so the verifier log can be put into the error message.
inline thread_local std::string* g_log_capture = nullptr;

inline int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // The verifier log arrives as one message of up to megabytes; its end says what failed.
  va_list again;
  va_copy(again, args);
  const int n = vsnprintf(nullptr, 0, fmt, args);
  std::string line(n > 0 ? size_t(n) : 0, '\0');
  if (n > 0) vsnprintf(line.data(), line.size() + 1, fmt, again);
  va_end(again);
  if (g_log_capture != nullptr) {
    g_log_capture->append(line);
    return n;
  }
  return level == LIBBPF_WARN ? fputs(line.c_str(), stderr) : 0;
}

inline void install_print_once() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_print); });
}

// Options for opening every family's skeleton. CO-RE relocations resolve against vmlinux's BTF
// only: when a type flavour is absent from vmlinux (e.g. mm_rss_stat___pre62 on a newer kernel)
// libbpf would otherwise go on to list kernel modules' BTF, which needs CAP_SYS_ADMIN, and the
// load would fail for an agent granted only CAP_BPF and CAP_PERFMON. No family reads module types.
inline const bpf_object_open_opts* open_options() {
  static const bpf_object_open_opts opts = [] {
    bpf_object_open_opts o{};
    o.sz = sizeof o;
    o.btf_custom_path = "/sys/kernel/btf/vmlinux";
    return o;
  }();
  static const bool have_vmlinux_btf = access(opts.btf_custom_path, R_OK) == 0;
  return have_vmlinux_btf ? &opts : nullptr;
}

struct LogCapture {
  std::string text;
  LogCapture() { g_log_capture = &text; }
  ~LogCapture() { g_log_capture = nullptr; }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string tail(size_t max = 16384) const {
    return text.size() > max ? "...\n" + text.substr(text.size() - max) : text;
  }
};

inline std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

inline std::string load_error(const std::string& what, int err, const LogCapture& log) {
  std::string msg = "cannot load BPF family " + what + ": " + errno_text(err);
  if (err == -EPERM || err == -EACCES)
    msg += " — run as root, or grant CAP_BPF, CAP_PERFMON (and CAP_SYS_RESOURCE on kernels < 5.11)";
  if (!log.text.empty()) msg += "\n--- libbpf / verifier log ---\n" + log.tail();
  return msg;
}

struct LinkDeleter {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

// Reads every entry of a hash map, one syscall per chunk where the kernel has batch lookups,
// key by key otherwise. `per_key` values per key: the number of possible CPUs for per-CPU maps.
template <typename Key, typename Value, typename Fn>
void for_each_entry(int fd, size_t per_key, Fn&& fn) {
  constexpr __u32 chunk = 1024;
  // Kept between calls: the agent reads every map each round, and a chunk of per-CPU
  // histograms is hundreds of KiB (a fresh, zeroed mmap each time).
  thread_local std::vector<Key> keys;
  thread_local std::vector<Value> values;
  keys.resize(chunk);
  values.resize(chunk * per_key);
  Key in_token{}, out_token{};
  bool first = true;
  size_t seen = 0;
  while (true) {
    __u32 count = chunk;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_token, &out_token, keys.data(),
                                   values.data(), &count, nullptr);
    if (err != 0 && errno != ENOENT) break;
    for (__u32 i = 0; i < count; ++i) fn(keys[i], &values[i * per_key]);
    seen += count;
    if (err != 0) return;  // ENOENT: no more entries
    in_token = out_token;
    first = false;
  }
  if (seen != 0) return;  // a batch failed midway: keep what was read rather than count twice
  Key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (bpf_map_lookup_elem(fd, &next, values.data()) == 0) fn(next, values.data());
    key = next;
    prev = &key;
  }
}

inline uint64_t prog_info_field(const bpf_program* prog, bool run_time) {
  int fd = bpf_program__fd(prog);
  if (fd < 0) return 0;
  bpf_prog_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  return run_time ? info.run_time_ns : info.run_cnt;
}

// Sum over CPUs of a family's per-CPU self-counters (the `pg_stats` map).
inline FamilyCounters read_counters(const std::string& family, const bpf_map* map, int ncpus) {
  FamilyCounters c{family, 0, 0, 0, 0, 0};
  std::vector<uint64_t> values(ncpus);
  for (__u32 key = 0; key < PG_STAT__MAX; ++key) {
    if (bpf_map_lookup_elem(bpf_map__fd(map), &key, values.data()) != 0) continue;
    uint64_t sum = 0;
    for (auto v : values) sum += v;
    switch (key) {
      case PG_STAT_EVENTS:
        c.events = sum;
        break;
      case PG_STAT_RINGBUF_DROPS:
        c.ringbuf_drops = sum;
        break;
      case PG_STAT_MAP_FULL:
        c.map_full = sum;
        break;
      case PG_STAT_READ_ERRORS:
        c.read_errors = sum;
        break;
      case PG_STAT_PAIR_MAP_FULL:
        c.pair_map_full = sum;
        break;
      case PG_STAT_RATE_LIMITED:
        c.rate_limited = sum;
        break;
      default:
        break;
    }
  }
  return c;
}

// Rodata for the families keyed like cpu.bpf.c (defined in kernel_probes.cpp).
pg_cgroup_key to_bpf_key(CgroupKeying k);
int v1_subsys_for(CgroupKeying k, const KernelFeatures& f);

inline void list_loaded(bpf_object* obj, std::vector<std::string>* loaded) {
  if (!loaded) return;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    if (bpf_program__fd(prog) >= 0) loaded->push_back(bpf_program__name(prog));
  }
}

}  // namespace podgauge::loader::detail
