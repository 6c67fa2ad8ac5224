#include "podgauge/agent/proc_stat.h"

#include <charconv>

namespace podgauge::agent {

namespace {

template <class Int>
bool to_int(std::string_view s, Int& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Splits on single spaces as the kernel writes them; a field never contains one.
std::vector<std::string_view> split_fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.remove_suffix(1);
  const size_t open = text.find(" (");
  const size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open + 2)
    return std::nullopt;
  // TASK_COMM_LEN is 16: a longer "comm" means the last ')' is not the comm's.
  if (close - (open + 2) > 64) return std::nullopt;
  ProcStat st;
  if (!to_int(text.substr(0, open), st.pid) || st.pid <= 0) return std::nullopt;
  st.comm = std::string(text.substr(open + 2, close - open - 2));
  if (close + 2 > text.size() || text[close + 1] != ' ') return std::nullopt;
  const auto f = split_fields(text.substr(close + 2));
  // f[0] is field 3 (state); field n is f[n - 3].
  if (f.size() < 22 || f[0].size() != 1) return std::nullopt;
  st.state = f[0][0];
  if (!to_int(f[1], st.ppid) || !to_int(f[11], st.utime_ticks) || !to_int(f[12], st.stime_ticks) ||
      !to_int(f[19], st.start_ticks) || !to_int(f[21], st.rss_pages))
    return std::nullopt;
  return st;
}

std::vector<uint32_t> parse_nspid(std::string_view status_text) {
  constexpr std::string_view key = "NSpid:";
  size_t at = status_text.rfind("\n" + std::string(key));
  if (at != std::string_view::npos)
    ++at;
  else if (status_text.substr(0, key.size()) == key)
    at = 0;
  else
    return {};
  size_t end = status_text.find('\n', at);
  if (end == std::string_view::npos) end = status_text.size();
  std::string_view rest = status_text.substr(at + key.size(), end - at - key.size());
  std::vector<uint32_t> out;
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == '\t' || rest.front() == ' ')) rest.remove_prefix(1);
    if (rest.empty()) break;
    size_t n = 0;
    while (n < rest.size() && rest[n] != '\t' && rest[n] != ' ') ++n;
    uint32_t v = 0;
    if (!to_int(rest.substr(0, n), v)) return {};
    out.push_back(v);
    rest.remove_prefix(n);
  }
  return out;
}

}  // namespace podgauge::agent
