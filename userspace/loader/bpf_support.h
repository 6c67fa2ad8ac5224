// Internals the BPF families' loaders share (kernel_probes.cpp defines them).
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpu.h"
#include "podgauge/loader/kernel_probes.h"

namespace podgauge::loader::detail {

extern thread_local std::string* g_log_capture;

/// Routes libbpf's output (the verifier log) into a capture while one is active.
void install_print_once();

/// Collects what libbpf prints on this thread while alive, for error messages.
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

std::string errno_text(int err);
/// "cannot load BPF family X: <errno>" + what to do + the verifier log's tail.
std::string load_error(const std::string& what, int err, const LogCapture& log);
pg_cgroup_key to_bpf_key(CgroupKeying k);
int v1_subsys_for(CgroupKeying k, const KernelFeatures& f);
/// run_time_ns (run_time) or run_cnt of a loaded program; 0 when it is not loaded.
uint64_t prog_info_field(const bpf_program* prog, bool run_time);

/// Sums one family's per-CPU pg_stats (bpf/stats.h).
FamilyCounters read_counters(const std::string& family, const bpf_map* map, int ncpus);

struct LinkDeleter {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

// Reads every entry of a hash map, one syscall per chunk where the kernel has batch lookups,
// key by key otherwise. `per_key` values per key: the number of possible CPUs for per-CPU maps.
template <typename Key, typename Value, typename Fn>
void for_each_entry(int fd, size_t per_key, Fn&& fn) {
  constexpr __u32 chunk = 1024;
  std::vector<Key> keys(chunk);
  std::vector<Value> values(chunk * per_key);
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

}  // namespace podgauge::loader::detail
