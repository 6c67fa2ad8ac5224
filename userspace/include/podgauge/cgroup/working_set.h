// Memory usage of one cgroup as the kubelet sees it: working set, RSS, page cache, swap.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "podgauge/cgroup/file_reader.h"

namespace podgauge::cgroup {

/// One reading of a memory cgroup's usage, in bytes.
struct MemoryUsage {
  uint64_t usage = 0;          // v1 memory.usage_in_bytes, v2 memory.current
  uint64_t working_set = 0;    // usage - inactive_file, clamped at 0 (kubelet/cAdvisor)
  uint64_t rss = 0;            // anonymous memory: v1 total_rss, v2 anon
  uint64_t page_cache = 0;     // v1 total_cache, v2 file
  uint64_t inactive_file = 0;  // v1 total_inactive_file, v2 inactive_file
  uint64_t swap = 0;           // v1 total_swap, v2 memory.swap.current
  std::optional<uint64_t> limit;  // v1 memory.limit_in_bytes, v2 memory.max; nullopt: none
};

/// Computes a MemoryUsage from the files' text. `v2` selects the key names. Throws
/// std::invalid_argument naming the missing key when memory.stat lacks what is needed.
MemoryUsage parse_memory_usage(bool v2, std::string_view usage_text, std::string_view stat_text,
                               std::string_view limit_text, std::string_view swap_text);

/// Reads a cgroup directory of the memory hierarchy (v1 memory controller, or v2 with the
/// memory controller enabled). nullopt when the cgroup is gone or has no memory files; throws
/// std::runtime_error with the path when a file is present but unreadable or malformed.
std::optional<MemoryUsage> read_memory_usage(FileReader& files, const CgroupDir& dir, bool v2);
/// Only the usage (v1 memory.usage_in_bytes, v2 memory.current): one small file.
std::optional<uint64_t> read_memory_usage_bytes(FileReader& files, const CgroupDir& dir, bool v2);

}  // namespace podgauge::cgroup
