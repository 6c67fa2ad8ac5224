#include "podgauge/cgroup/memory_stats.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

namespace podgauge::cgroup {

namespace {

[[noreturn]] void fail(std::string_view what, std::string_view line, std::string_view expected) {
  throw CgroupError(std::string(what) + ": cannot parse '" + std::string(line.substr(0, 120)) +
                    "': expected " + std::string(expected));
}

// Splits off the next line (without its '\n'); the text must end with a newline or not at all.
bool next_line(std::string_view& text, std::string_view& line) {
  if (text.empty()) return false;
  const size_t nl = text.find('\n');
  line = text.substr(0, nl);
  text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  return true;
}

// The kernel prints counters with %llu: digits only, no sign, no leading zero.
bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// PSI averages are printed as "%lu.%02lu" (LOAD_INT/LOAD_FRAC): digits, a dot, two digits.
bool parse_percent(std::string_view s, double& out) {
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || s.size() - dot - 1 != 2 || dot > 3) return false;
  std::uint64_t whole = 0;
  const char f0 = s[dot + 1], f1 = s[dot + 2];
  if (!parse_u64(s.substr(0, dot), whole) || f0 < '0' || f0 > '9' || f1 < '0' || f1 > '9')
    return false;
  const int frac = (f0 - '0') * 10 + (f1 - '0');
  if (whole > 100) return false;
  out = double(whole) + double(frac) / 100.0;
  return out <= 100.0;
}

// "key value" with exactly one space and an unsigned value.
bool split_key_value(std::string_view line, std::string_view& key, std::uint64_t& value) {
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0) return false;
  key = line.substr(0, sp);
  return parse_u64(line.substr(sp + 1), value);
}

PressureLine parse_pressure_line(std::string_view fields, std::string_view line) {
  static constexpr std::string_view expected =
      "'some|full avg10=<pct> avg60=<pct> avg300=<pct> total=<us>'";
  PressureLine p;
  const std::string_view names[] = {"avg10=", "avg60=", "avg300=", "total="};
  for (int i = 0; i < 4; ++i) {
    const size_t sp = fields.find(' ');
    const std::string_view field = fields.substr(0, sp);
    if ((i < 3) == (sp == std::string_view::npos)) fail("PSI", line, expected);
    fields = sp == std::string_view::npos ? std::string_view() : fields.substr(sp + 1);
    if (field.substr(0, names[i].size()) != names[i]) fail("PSI", line, expected);
    const std::string_view value = field.substr(names[i].size());
    bool ok = false;
    switch (i) {
      case 0:
        ok = parse_percent(value, p.avg10);
        break;
      case 1:
        ok = parse_percent(value, p.avg60);
        break;
      case 2:
        ok = parse_percent(value, p.avg300);
        break;
      case 3:
        ok = parse_u64(value, p.total_us);
        break;
    }
    if (!ok) fail("PSI", line, expected);
  }
  return p;
}

template <typename T, typename Parse>
std::optional<T> read_parsed(FileReader& files, const std::filesystem::path& file, Parse parse) {
  auto text = files.read(file);
  if (!text) return std::nullopt;
  try {
    return parse(*text);
  } catch (const CgroupError& e) {
    throw CgroupError(file.string() + ": " + e.what());
  }
}

template <typename T, typename Parse>
std::optional<T> read_parsed(FileReader& files, const CgroupDir& dir, std::string_view name,
                             Parse parse) {
  auto text = files.read(dir, name);
  if (!text) return std::nullopt;
  try {
    return parse(*text);
  } catch (const CgroupError& e) {
    throw CgroupError(dir.path() + "/" + std::string(name) + ": " + e.what());
  }
}

}  // namespace

Pressure parse_pressure(std::string_view text) {
  Pressure out;
  bool some = false;
  std::string_view line;
  while (next_line(text, line)) {
    if (line.substr(0, 5) == "some ") {
      if (some) fail("PSI", line, "one 'some' line");
      out.some = parse_pressure_line(line.substr(5), line);
      some = true;
    } else if (line.substr(0, 5) == "full ") {
      if (out.full) fail("PSI", line, "one 'full' line");
      out.full = parse_pressure_line(line.substr(5), line);
    } else {
      fail("PSI", line, "a line starting with 'some ' or 'full '");
    }
  }
  if (!some) throw CgroupError("PSI: no 'some' line");
  return out;
}

MemoryEvents parse_memory_events(std::string_view text) {
  MemoryEvents e;
  unsigned seen = 0;  // bit per required key
  std::string_view line;
  while (next_line(text, line)) {
    std::string_view key;
    std::uint64_t value = 0;
    if (!split_key_value(line, key, value)) fail("memory.events", line, "'<key> <count>'");
    std::uint64_t* field = nullptr;
    unsigned bit = 0;
    if (key == "low")
      field = &e.low, bit = 1;
    else if (key == "high")
      field = &e.high, bit = 2;
    else if (key == "max")
      field = &e.max, bit = 4;
    else if (key == "oom")
      field = &e.oom, bit = 8;
    else if (key == "oom_kill")
      field = &e.oom_kill, bit = 16;
    else if (key == "oom_group_kill") {
      if (e.oom_group_kill) fail("memory.events", line, "each key once");
      e.oom_group_kill = value;
      continue;
    } else {
      continue;  // a newer kernel's key (e.g. sock_throttled)
    }
    if (seen & bit) fail("memory.events", line, "each key once");
    seen |= bit;
    *field = value;
  }
  if (seen != 31) throw CgroupError("memory.events: missing one of low, high, max, oom, oom_kill");
  return e;
}

MemoryOomControl parse_memory_oom_control(std::string_view text) {
  MemoryOomControl c;
  unsigned seen = 0;
  std::string_view line;
  auto flag = [&](std::string_view l, std::uint64_t v) {
    if (v > 1) fail("memory.oom_control", l, "0 or 1");
    return v == 1;
  };
  while (next_line(text, line)) {
    std::string_view key;
    std::uint64_t value = 0;
    if (!split_key_value(line, key, value)) fail("memory.oom_control", line, "'<key> <value>'");
    unsigned bit = 0;
    if (key == "oom_kill_disable")
      c.oom_kill_disable = flag(line, value), bit = 1;
    else if (key == "under_oom")
      c.under_oom = flag(line, value), bit = 2;
    else if (key == "oom_kill")
      c.oom_kill = value, bit = 4;
    else
      continue;
    if (seen & bit) fail("memory.oom_control", line, "each key once");
    seen |= bit;
  }
  if ((seen & 3) != 3)
    throw CgroupError("memory.oom_control: missing oom_kill_disable or under_oom");
  return c;
}

std::uint64_t parse_single_counter(std::string_view text) {
  std::string_view line;
  std::string_view rest = text;
  if (!next_line(rest, line) || !rest.empty()) fail("counter", text, "one unsigned integer line");
  std::uint64_t v = 0;
  if (!parse_u64(line, v)) fail("counter", line, "one unsigned integer");
  return v;
}

std::optional<Pressure> read_pressure(FileReader& files, const std::filesystem::path& file) {
  return read_parsed<Pressure>(files, file, parse_pressure);
}

std::optional<Pressure> read_pressure(FileReader& files, const CgroupDir& dir, std::string_view name) {
  return read_parsed<Pressure>(files, dir, name, parse_pressure);
}

std::optional<MemoryEvents> read_memory_events(FileReader& files, const CgroupDir& cgroup_dir) {
  return read_parsed<MemoryEvents>(files, cgroup_dir, "memory.events", parse_memory_events);
}

std::optional<MemoryOomControl> read_memory_oom_control(FileReader& files,
                                                        const CgroupDir& cgroup_dir) {
  return read_parsed<MemoryOomControl>(files, cgroup_dir, "memory.oom_control", parse_memory_oom_control);
}

std::optional<std::uint64_t> read_memory_failcnt(FileReader& files, const CgroupDir& cgroup_dir) {
  return read_parsed<std::uint64_t>(files, cgroup_dir, "memory.failcnt", parse_single_counter);
}

}  // namespace podgauge::cgroup
