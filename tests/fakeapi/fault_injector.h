#pragma once
// Failures on demand, for testing how clients cope. Every setter is one-shot or counted, so a
// test states exactly which requests fail.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace podgauge::fakeapi {

/// Thread-safety: fully thread-safe (atomics).
class FaultInjector {
 public:
  /// Every watch open now ends at once, its connection cut without the final chunk.
  void drop_watches() { ++watch_generation_; }
  std::uint64_t watch_generation() const { return watch_generation_; }

  /// The next `n` watches get an ERROR event with a 410 Expired Status, then end.
  void expire_next_watches(int n = 1) { expire_watches_ += n; }
  bool take_expire_watch() { return take(expire_watches_); }

  /// The next `n` API requests (not /fakeapi/ control calls) answer `code` with a Status.
  void fail_next_requests(int n, int code = 500) {
    fail_code_ = code;
    fail_requests_ += n;
  }
  bool take_failed_request(int& code) {
    if (!take(fail_requests_)) return false;
    code = fail_code_;
    return true;
  }

  /// Delay before each watch line (0 = none), for slow-consumer/slow-server tests.
  void set_watch_line_delay(std::chrono::milliseconds d) { watch_delay_ms_ = d.count(); }
  std::chrono::milliseconds watch_line_delay() const {
    return std::chrono::milliseconds(watch_delay_ms_.load());
  }

  /// The next watch sends half of its first line, then cuts the connection.
  void truncate_next_watch() { ++truncate_watches_; }
  bool take_truncate_watch() { return take(truncate_watches_); }

  /// The next watch first sends an event whose object cannot be decoded
  /// (metadata is a string), then continues normally.
  void malform_next_watch() { ++malform_watches_; }
  bool take_malform_watch() { return take(malform_watches_); }

  void reset() {
    expire_watches_ = 0;
    fail_requests_ = 0;
    watch_delay_ms_ = 0;
    truncate_watches_ = 0;
    malform_watches_ = 0;
  }

 private:
  static bool take(std::atomic<int>& counter) {
    int v = counter.load();
    while (v > 0)
      if (counter.compare_exchange_weak(v, v - 1)) return true;
    return false;
  }

  std::atomic<std::uint64_t> watch_generation_{0};
  std::atomic<int> expire_watches_{0};
  std::atomic<int> fail_requests_{0};
  std::atomic<int> fail_code_{500};
  std::atomic<long long> watch_delay_ms_{0};
  std::atomic<int> truncate_watches_{0};
  std::atomic<int> malform_watches_{0};
};

}  // namespace podgauge::fakeapi
