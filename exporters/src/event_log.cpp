#include "podgauge/exporters/event_log.h"

#include <algorithm>
#include <stdexcept>

#include <google/protobuf/descriptor.h>

#include "utf8.h"

namespace podgauge::exporters {

namespace pb = google::protobuf;

namespace {

// proto3 parsers reject invalid UTF-8 in `string` fields, so one odd comm would break every
// protobuf client; fix strings once, here, where events enter.
void make_strings_valid_utf8(pb::Message& message) {
  const pb::Descriptor& d = *message.GetDescriptor();
  const pb::Reflection& r = *message.GetReflection();
  for (int i = 0; i < d.field_count(); ++i) {
    const pb::FieldDescriptor* f = d.field(i);
    if (f->is_repeated()) continue;
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING && f->type() == pb::FieldDescriptor::TYPE_STRING) {
      std::string scratch;
      const std::string& value = r.GetStringReference(message, f, &scratch);
      if (!detail::is_valid_utf8(value)) {
        std::string fixed = value;
        detail::make_valid_utf8(fixed);
        r.SetString(&message, f, std::move(fixed));
      }
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && r.HasField(message, f)) {
      make_strings_valid_utf8(*r.MutableMessage(&message, f));
    }
  }
}

std::int64_t now_unix_nano() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

EventLog::EventLog(std::size_t capacity) : capacity_(capacity) {
  if (capacity == 0) throw std::invalid_argument("EventLog capacity must be at least 1");
}

std::uint64_t EventLog::append(podgauge::v1::Event event) {
  if (event.time_unix_nano() == 0) event.set_time_unix_nano(now_unix_nano());
  make_strings_valid_utf8(event);
  std::uint64_t seq;
  {
    std::lock_guard lock(mutex_);
    seq = ++last_seq_;
    event.set_seq(seq);
    if (events_.size() == capacity_) events_.pop_front();
    events_.push_back(std::move(event));
  }
  appended_.notify_all();
  return seq;
}

std::vector<podgauge::v1::Event> EventLog::since(std::uint64_t after, std::size_t max) const {
  std::lock_guard lock(mutex_);
  std::vector<podgauge::v1::Event> out;
  if (events_.empty() || after >= last_seq_ || max == 0) return out;
  const std::uint64_t oldest = events_.front().seq();
  const std::size_t first = after < oldest ? 0 : static_cast<std::size_t>(after + 1 - oldest);
  const std::size_t count = std::min(max, events_.size() - first);
  out.reserve(count);
  for (std::size_t i = first; i < first + count; ++i) out.push_back(events_[i]);
  return out;
}

std::uint64_t EventLog::oldest_seq() const {
  std::lock_guard lock(mutex_);
  return events_.empty() ? last_seq_ + 1 : events_.front().seq();
}

std::uint64_t EventLog::last_seq() const {
  std::lock_guard lock(mutex_);
  return last_seq_;
}

std::size_t EventLog::size() const {
  std::lock_guard lock(mutex_);
  return events_.size();
}

bool EventLog::wait_for_after(std::uint64_t after, std::chrono::milliseconds timeout) const {
  return wait_for_after(after, timeout, std::stop_token{});
}

bool EventLog::wait_for_after(std::uint64_t after, std::chrono::milliseconds timeout,
                              std::stop_token stop) const {
  std::unique_lock lock(mutex_);
  appended_.wait_for(lock, stop, timeout, [&] { return closed_ || last_seq_ > after; });
  return last_seq_ > after;
}

void EventLog::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  appended_.notify_all();
}

bool EventLog::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

}  // namespace podgauge::exporters
