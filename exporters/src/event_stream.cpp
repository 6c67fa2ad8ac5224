#include "podgauge/exporters/event_stream.h"

#include <cstdint>
#include <string>

namespace podgauge::exporters {

namespace {
void append_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}
}  // namespace

void append_delimited(const podgauge::v1::Event& event, std::string& out) {
  const std::size_t size = event.ByteSizeLong();
  append_varint(out, size);
  const std::size_t at = out.size();
  out.resize(at + size);
  event.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(out.data() + at));
}

void append_keepalive_frame(std::string& out) { out.push_back('\0'); }

DelimitedEventReader::DelimitedEventReader(std::size_t max_frame_bytes)
    : max_frame_bytes_(max_frame_bytes) {}

void DelimitedEventReader::feed(std::string_view bytes) {
  // Drop consumed bytes before growing so the buffer stays about one frame long.
  if (offset_ > 0 && (offset_ == buffer_.size() || offset_ >= 64 * 1024)) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

void DelimitedEventReader::fail(std::string message) {
  error_ = std::move(message);
  throw EventStreamError(error_);
}

bool DelimitedEventReader::next(podgauge::v1::Event& event) {
  if (!error_.empty()) throw EventStreamError(error_);
  while (true) {
    // A varint of at most 10 bytes; anything else is not a protobuf length prefix.
    std::uint64_t length = 0;
    std::size_t pos = offset_;
    int shift = 0;
    bool complete = false;
    while (pos < buffer_.size()) {
      const auto byte = static_cast<std::uint8_t>(buffer_[pos++]);
      length |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        complete = true;
        break;
      }
      shift += 7;
      if (shift >= 64) fail("malformed event stream: frame length varint longer than 10 bytes");
      if (length > max_frame_bytes_)
        break;  // already too large; report below without waiting for more bytes
    }
    if (length > max_frame_bytes_) {
      fail("malformed event stream: frame of " + std::to_string(length) +
           " bytes exceeds the limit of " + std::to_string(max_frame_bytes_) +
           " bytes (is this really a podgauge /v1/events protobuf stream?)");
    }
    if (!complete) return false;
    if (buffer_.size() - pos < length) return false;
    offset_ = pos + length;
    if (length == 0) continue;  // keep-alive
    event.Clear();
    if (!event.ParseFromArray(buffer_.data() + pos, static_cast<int>(length))) {
      fail("malformed event stream: a " + std::to_string(length) +
           "-byte frame is not a valid podgauge.v1.Event");
    }
    return true;
  }
}

}  // namespace podgauge::exporters
