#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <mutex>
#include <stop_token>
#include <vector>

#include "podgauge/v1/events.pb.h"

namespace podgauge::exporters {

/// Bounded in-memory log of the agent's events: the source of /v1/events. Assigns seq 1, 2, ...
/// and keeps the newest `capacity` events; readers resume with since(last seq they saw).
/// Thread-safe: every member may be called concurrently from any thread.
class EventLog {
 public:
  static constexpr std::size_t kDefaultCapacity = 100'000;

  explicit EventLog(std::size_t capacity = kDefaultCapacity);
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  /// Stores `event` with the next seq (any seq it carries is replaced) and, when it has none,
  /// time_unix_nano = now. String fields are made valid UTF-8. Wakes waiters. Returns the seq.
  std::uint64_t append(podgauge::v1::Event event);

  /// Up to `max` held events with seq > `after`, oldest first. Events already evicted are
  /// skipped: a caller detects the loss when the first seq returned is > after + 1.
  std::vector<podgauge::v1::Event> since(
      std::uint64_t after, std::size_t max = std::numeric_limits<std::size_t>::max()) const;

  /// Seq of the oldest held event; last_seq() + 1 when the log is empty.
  std::uint64_t oldest_seq() const;
  /// Seq of the newest event ever appended; 0 before the first.
  std::uint64_t last_seq() const;
  std::size_t size() const;
  std::size_t capacity() const { return capacity_; }

  /// Blocks until an event with seq > `after` exists (true), or the timeout passes, the log is
  /// closed or `stop` is requested (false unless such an event exists by then).
  bool wait_for_after(std::uint64_t after, std::chrono::milliseconds timeout) const;
  bool wait_for_after(std::uint64_t after, std::chrono::milliseconds timeout,
                      std::stop_token stop) const;

  /// Shutdown: wakes every waiter now and makes later waits return at once. Idempotent.
  void close();
  bool closed() const;

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  mutable std::condition_variable_any appended_;
  std::deque<podgauge::v1::Event> events_;  // contiguous seqs: front is oldest_seq()
  std::uint64_t last_seq_ = 0;
  bool closed_ = false;
};

}  // namespace podgauge::exporters
