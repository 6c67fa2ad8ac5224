// The direct decoder of Pod watch events and list items: the fields the profiler keeps are read
// straight from the text, without building the JSON tape first (issue 4: one watch event
// applied in < 20 us). WatchEvent<Pod>::parse and ObjectList<Pod>::parse use it and fall back to
// the tape decoder for anything it does not take, so their results and errors do not change;
// this header exists for the differential test and fuzzer that hold it to that.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "podgauge/k8s/list.h"
#include "podgauge/k8s/pod.h"

namespace podgauge::k8s::pod_direct {

/// A watch line {"type": ADDED|MODIFIED|DELETED, "object": <Pod>} decoded from the text.
/// nullopt for anything else: other event types, malformed JSON, an object the tape decoder
/// would refuse, or a rare shape the direct decoder leaves to it (escaped keys, repeated
/// "object" ...). Never throws for bad input.
std::optional<WatchEvent<Pod>> decode_watch_event(std::string_view text);

/// The Pod whose JSON value starts at `pos` (after whitespace) in `text`; on success `pos` is
/// moved past it. nullopt (and `pos` unchanged) in the cases decode_watch_event gives nullopt.
/// Syntax past the value is not checked.
std::optional<Pod> decode_pod_at(std::string_view text, std::size_t& pos);

/// WatchEvent<Pod>::parse with the tape decoder only: the reference the direct one must match.
WatchEvent<Pod> parse_watch_event_with_tape(std::string_view text);

}  // namespace podgauge::k8s::pod_direct
