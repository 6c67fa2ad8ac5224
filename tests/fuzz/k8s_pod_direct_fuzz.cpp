// libFuzzer target, differential: the direct Pod decoder of watch events must never accept a
// line the tape decoder refuses, must build the same event when both accept, and
// WatchEvent<Pod>::parse (direct first, tape as fallback) must give the tape decoder's outcome.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../unit/k8s_pod_text.h"
#include "podgauge/k8s/error.h"
#include "podgauge/k8s/pod_direct.h"

namespace {

using namespace podgauge::k8s;

[[noreturn]] void differ(const char* what, std::string_view input, const std::string& a,
                         const std::string& b) {
  std::fprintf(stderr, "pod_direct differs from the tape decoder: %s\ninput: %.*s\n%s\n%s\n", what,
               static_cast<int>(input.size()), input.data(), a.c_str(), b.c_str());
  std::abort();
}

// The outcome as text: the event, or the kind and message of the error.
template <class F>
std::string outcome(F&& f, bool& ok) {
  ok = false;
  try {
    std::string text = testing::event_text(f());
    ok = true;
    return text;
  } catch (const JsonSyntaxError& e) {
    return std::string("syntax: ") + e.what();
  } catch (const ObjectError& e) {
    return std::string("object: ") + e.what();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bool tape_ok = false;
  const std::string tape =
      outcome([&] { return pod_direct::parse_watch_event_with_tape(text); }, tape_ok);
  if (const auto direct = pod_direct::decode_watch_event(text)) {
    const std::string got = testing::event_text(*direct);
    if (!tape_ok) differ("direct accepted a line the tape decoder refuses", text, got, tape);
    if (got != tape) differ("different events", text, got, tape);
  }
  bool parse_ok = false;
  const std::string parsed = outcome([&] { return WatchEvent<Pod>::parse(text); }, parse_ok);
  if (parsed != tape) differ("WatchEvent<Pod>::parse changed the outcome", text, parsed, tape);
  return 0;
}
