// libFuzzer target: /proc/<pid>/stat carries a command name any process can set, and
// /proc/<pid>/status is parsed for NSpid; neither parser may crash or accept nonsense.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "podgauge/agent/proc_stat.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto st = podgauge::agent::parse_proc_stat(text)) {
    if (st->pid <= 0 || st->comm.size() > 64) std::abort();
    // The comm runs from the first " (" to the last ')'.
    const size_t open = text.find(" (");
    if (open == std::string_view::npos || text.substr(open + 2, st->comm.size()) != st->comm ||
        text.rfind(')') != open + 2 + st->comm.size())
      std::abort();
  }
  for (uint32_t pid : podgauge::agent::parse_nspid(text)) (void)pid;
  return 0;
}
