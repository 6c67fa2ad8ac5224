// Feeds arbitrary bytes to the /v1/events decoders, split at input-chosen points: the
// delimited protobuf reader and the NDJSON parser must only ever report their documented
// errors, and every event they accept must survive a re-encode round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <google/protobuf/util/message_differencer.h>

#include "podgauge/exporters/event_json.h"
#include "podgauge/exporters/event_stream.h"

namespace {

using podgauge::exporters::DelimitedEventReader;
using podgauge::exporters::EventJsonError;
using podgauge::exporters::EventStreamError;
using podgauge::v1::Event;

void check_round_trip(const Event& event) {
  // An all-default event encodes to zero bytes, which is the keep-alive frame by design
  // (logged events always have seq >= 1).
  if (event.ByteSizeLong() == 0) return;
  std::string wire;
  podgauge::exporters::append_delimited(event, wire);
  DelimitedEventReader again;
  again.feed(wire);
  Event back;
  if (!again.next(back) || !google::protobuf::util::MessageDifferencer::Equals(event, back)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // First byte picks the chunk size, so splits land inside varints and messages.
  const std::size_t chunk = data[0] % 17 + 1;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  DelimitedEventReader reader(4096);
  Event event;
  try {
    for (std::size_t pos = 0; pos < input.size(); pos += chunk) {
      reader.feed(input.substr(pos, chunk));
      while (reader.next(event)) check_round_trip(event);
    }
  } catch (const EventStreamError&) {
    // Documented rejection of malformed input; the reader must stay failed.
    bool still_failed = false;
    try {
      reader.next(event);
    } catch (const EventStreamError&) {
      still_failed = true;
    }
    if (!still_failed) std::abort();
  }

  try {
    const Event parsed = podgauge::exporters::from_json_line(input);
    const Event again = podgauge::exporters::from_json_line(podgauge::exporters::to_json_line(parsed));
    if (!google::protobuf::util::MessageDifferencer::Equals(parsed, again)) std::abort();
  } catch (const EventJsonError&) {
  }
  return 0;
}
