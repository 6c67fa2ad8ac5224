// libFuzzer target: PSI files, memory.events, memory.oom_control and memory.failcnt come from
// the kernel, but through a path a container's owner can bind-mount over, so the parsers must
// never crash, and what they accept must round-trip.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "podgauge/cgroup/memory_stats.h"

namespace {

using namespace podgauge::cgroup;

void check(bool condition) {
  if (!condition) std::abort();
}

std::string render(const char* kind, const PressureLine& l) {
  char buf[160];
  auto pct = [](double v) { return unsigned(v * 100 + 0.5); };
  snprintf(buf, sizeof buf, "%s avg10=%u.%02u avg60=%u.%02u avg300=%u.%02u total=%llu\n", kind,
           pct(l.avg10) / 100, pct(l.avg10) % 100, pct(l.avg60) / 100, pct(l.avg60) % 100,
           pct(l.avg300) / 100, pct(l.avg300) % 100, (unsigned long long)l.total_us);
  return buf;
}

void check_pressure(std::string_view text) {
  Pressure p;
  try {
    p = parse_pressure(text);
  } catch (const CgroupError&) {
    return;
  }
  for (const PressureLine* l : {&p.some, p.full ? &*p.full : nullptr}) {
    if (!l) continue;
    for (double v : {l->avg10, l->avg60, l->avg300}) check(v >= 0 && v <= 100);
  }
  std::string again = render("some", p.some);
  if (p.full) again += render("full", *p.full);
  check(parse_pressure(again) == p);
}

void check_memory_events(std::string_view text) {
  try {
    const MemoryEvents e = parse_memory_events(text);
    std::string again = "low " + std::to_string(e.low) + "\nhigh " + std::to_string(e.high) +
                        "\nmax " + std::to_string(e.max) + "\noom " + std::to_string(e.oom) +
                        "\noom_kill " + std::to_string(e.oom_kill) + "\n";
    if (e.oom_group_kill) again += "oom_group_kill " + std::to_string(*e.oom_group_kill) + "\n";
    check(parse_memory_events(again) == e);
  } catch (const CgroupError&) {
  }
}

void check_oom_control(std::string_view text) {
  try {
    const MemoryOomControl c = parse_memory_oom_control(text);
    std::string again = std::string("oom_kill_disable ") + (c.oom_kill_disable ? "1" : "0") +
                        "\nunder_oom " + (c.under_oom ? "1" : "0") + "\n";
    if (c.oom_kill) again += "oom_kill " + std::to_string(*c.oom_kill) + "\n";
    check(parse_memory_oom_control(again) == c);
  } catch (const CgroupError&) {
  }
}

void check_counter(std::string_view text) {
  try {
    const std::uint64_t v = parse_single_counter(text);
    check(parse_single_counter(std::to_string(v) + "\n") == v);
    // Strict: the accepted text is the kernel's rendering of the value, nothing else.
    check(text == std::to_string(v) + "\n" || text == std::to_string(v));
  } catch (const CgroupError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_pressure(text);
  check_memory_events(text);
  check_oom_control(text);
  check_counter(text);
  return 0;
}
