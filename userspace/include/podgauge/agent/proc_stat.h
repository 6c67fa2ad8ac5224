// Parsers for /proc/<pid>/{stat,status} (/proc/<pid>/cgroup: cgroup/hierarchy.h): external input,
// written by the kernel but carrying a command name any process may set to anything (spaces,
// parentheses, newlines).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podgauge::agent {

/// The fields of /proc/<pid>/stat podgauge uses (proc(5) numbering in comments).
struct ProcStat {
  int32_t pid = 0;           // (1)
  std::string comm;          // (2) without the parentheses; may hold any byte but NUL
  char state = '?';          // (3)
  int32_t ppid = 0;          // (4)
  uint64_t utime_ticks = 0;  // (14) clock ticks (sysconf(_SC_CLK_TCK))
  uint64_t stime_ticks = 0;  // (15)
  uint64_t start_ticks = 0;  // (22) since boot
  int64_t rss_pages = 0;     // (24)
};

/// Parses one /proc/<pid>/stat. The comm runs from the first '(' to the *last* ')' (a comm
/// may itself contain ") "). nullopt for anything malformed.
std::optional<ProcStat> parse_proc_stat(std::string_view text);

/// The "NSpid:" line of /proc/<pid>/status: the pid in each nested pid namespace, outermost
/// first. Empty when absent (kernels before 4.1) or malformed.
std::vector<uint32_t> parse_nspid(std::string_view status_text);

}  // namespace podgauge::agent
