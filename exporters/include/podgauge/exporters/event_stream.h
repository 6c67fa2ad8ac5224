#pragma once
// Length-delimited protobuf stream of podgauge.v1.Event: each frame is a base-128 varint length
// followed by that many bytes of Event (the framing of protobuf's writeDelimitedTo). A frame of
// length 0 is a keep-alive that readers skip; real events always have seq >= 1, so they never
// encode to zero bytes.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "podgauge/v1/events.pb.h"

namespace podgauge::exporters {

/// Frames larger than this are rejected: a real event is a few hundred bytes.
inline constexpr std::size_t kMaxEventFrameBytes = std::size_t{1} << 20;

inline constexpr std::string_view kProtobufStreamContentType = "application/x-protobuf";
inline constexpr std::string_view kNdjsonContentType = "application/x-ndjson";

/// Malformed or oversized input; the reader that threw stays failed.
class EventStreamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Appends one frame (varint length + serialized event) to `out`.
void append_delimited(const podgauge::v1::Event& event, std::string& out);
/// Appends a keep-alive frame (a single zero byte).
void append_keepalive_frame(std::string& out);

/// Incremental decoder: feed it chunks split anywhere (even inside the length varint) and take
/// complete events with next().
/// Not thread-safe: one reader per stream, used from one thread at a time.
class DelimitedEventReader {
 public:
  explicit DelimitedEventReader(std::size_t max_frame_bytes = kMaxEventFrameBytes);

  /// Buffers more bytes. Cheap; decoding happens in next().
  void feed(std::string_view bytes);

  /// Decodes the next complete event into `event`; false when more input is needed.
  /// Throws EventStreamError on a bad varint, an oversized frame or an unparsable message.
  bool next(podgauge::v1::Event& event);

  /// True when bytes of an incomplete frame are buffered (a stream ending here was truncated).
  bool mid_frame() const { return offset_ < buffer_.size(); }

 private:
  [[noreturn]] void fail(std::string message);

  std::size_t max_frame_bytes_;
  std::string buffer_;
  std::size_t offset_ = 0;  // first unconsumed byte of buffer_
  std::string error_;       // set once the stream is known to be corrupt
};

}  // namespace podgauge::exporters
