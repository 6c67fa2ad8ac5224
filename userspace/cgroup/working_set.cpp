#include "podgauge/cgroup/working_set.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>

namespace podgauge::cgroup {

namespace {

std::optional<uint64_t> parse_u64(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> stat_key(std::string_view text, std::string_view key) {
  while (!text.empty()) {
    const auto eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ')
      return parse_u64(line.substr(key.size() + 1));
  }
  return std::nullopt;
}

uint64_t required(std::string_view text, std::string_view key) {
  if (auto v = stat_key(text, key)) return *v;
  throw std::invalid_argument("memory.stat has no valid '" + std::string(key) + "' line");
}

// v1 reports "no limit" as a huge page-aligned number (LONG_MAX rounded down to a page).
constexpr uint64_t kV1Unlimited = uint64_t(std::numeric_limits<int64_t>::max()) & ~uint64_t(0xfff);

}  // namespace

MemoryUsage parse_memory_usage(bool v2, std::string_view usage_text, std::string_view stat_text,
                               std::string_view limit_text, std::string_view swap_text) {
  MemoryUsage m;
  auto usage = parse_u64(usage_text);
  if (!usage)
    throw std::invalid_argument(std::string(v2 ? "memory.current" : "memory.usage_in_bytes") +
                                " is not a number");
  m.usage = *usage;
  if (v2) {
    m.inactive_file = required(stat_text, "inactive_file");
    m.rss = required(stat_text, "anon");
    m.page_cache = required(stat_text, "file");
    if (!swap_text.empty()) m.swap = parse_u64(swap_text).value_or(0);
    std::string_view l = limit_text;
    while (!l.empty() && (l.back() == '\n' || l.back() == ' ')) l.remove_suffix(1);
    if (!l.empty() && l != "max") {
      auto v = parse_u64(l);
      if (!v) throw std::invalid_argument("memory.max is neither 'max' nor a number");
      m.limit = *v;
    }
  } else {
    m.inactive_file = required(stat_text, "total_inactive_file");
    m.rss = required(stat_text, "total_rss");
    m.page_cache = required(stat_text, "total_cache");
    m.swap = stat_key(stat_text, "total_swap").value_or(0);  // absent without swap accounting
    if (!limit_text.empty()) {
      auto v = parse_u64(limit_text);
      if (!v) throw std::invalid_argument("memory.limit_in_bytes is not a number");
      if (*v < kV1Unlimited) m.limit = *v;
    }
  }
  m.working_set = m.usage > m.inactive_file ? m.usage - m.inactive_file : 0;
  return m;
}

std::optional<MemoryUsage> read_memory_usage(FileReader& files, const CgroupDir& dir, bool v2) {
  // Each text is copied: the reader's view lasts until its next read.
  auto read = [&](const char* name) -> std::optional<std::string> {
    if (auto t = files.read(dir, name)) return std::string(*t);
    return std::nullopt;
  };
  auto usage = read(v2 ? "memory.current" : "memory.usage_in_bytes");
  if (!usage) return std::nullopt;
  auto stat = read("memory.stat");
  if (!stat) return std::nullopt;
  auto limit = read(v2 ? "memory.max" : "memory.limit_in_bytes");
  std::optional<std::string> swap;
  if (v2) swap = read("memory.swap.current");
  try {
    return parse_memory_usage(v2, *usage, *stat, limit.value_or(""), swap.value_or(""));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(dir.path() + ": " + e.what());
  }
}

std::optional<uint64_t> read_memory_usage_bytes(FileReader& files, const CgroupDir& dir, bool v2) {
  auto text = files.read(dir, v2 ? "memory.current" : "memory.usage_in_bytes");
  if (!text) return std::nullopt;
  return parse_u64(*text);
}

}  // namespace podgauge::cgroup
