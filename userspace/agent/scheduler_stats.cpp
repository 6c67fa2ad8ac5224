#include "podgauge/agent/scheduler_stats.h"

#include <algorithm>
#include <charconv>

namespace podgauge::agent {

void LatencyHistogram::add(const LatencyHistogram& o) {
  for (size_t i = 0; i < slots.size(); ++i) slots[i] += o.slots[i];
  sum_ns += o.sum_ns;
  count += o.count;
}

void LatencyHistogram::max_with(const LatencyHistogram& o) {
  for (size_t i = 0; i < slots.size(); ++i) slots[i] = std::max(slots[i], o.slots[i]);
  sum_ns = std::max(sum_ns, o.sum_ns);
  count = std::max(count, o.count);
}

void CfsStats::max_with(const CfsStats& o) {
  periods = std::max(periods, o.periods);
  throttled_periods = std::max(throttled_periods, o.throttled_periods);
  throttled_ns = std::max(throttled_ns, o.throttled_ns);
}

std::optional<CfsStats> parse_cfs_stats(std::string_view text) {
  CfsStats s;
  bool throttled_seen = false;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    const auto space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, space), value = line.substr(space + 1);
    uint64_t v = 0;
    if (std::from_chars(value.data(), value.data() + value.size(), v).ec != std::errc{}) continue;
    if (key == "nr_periods")
      s.periods = v;
    else if (key == "nr_throttled")
      s.throttled_periods = v, throttled_seen = true;
    else if (key == "throttled_time")
      s.throttled_ns = v;  // v1: ns
    else if (key == "throttled_usec")
      s.throttled_ns = v * 1000;  // v2: us
  }
  if (!throttled_seen) return std::nullopt;
  return s;
}

}  // namespace podgauge::agent
