// Kubernetes Events about our observations (an OOM kill on a pod), written the way client-go's
// k8s.io/client-go/tools/events EventRecorder writes them: events.k8s.io/v1 (core/v1 when the
// server lacks it), one object per series of isomorphic occurrences with series.count and
// series.lastObservedTime PATCHed on repeats, a per-object spam filter and a global rate
// limit, delivery off the caller's thread with retries.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "podgauge/k8s/api_client.h"

namespace podgauge::k8s {

/// What an Event is about (metav1 ObjectReference, the fields events need).
struct EventObjectReference {
  std::string kind = "Pod";
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string api_version = "v1";
  std::string field_path;  ///< e.g. "spec.containers{app}"; optional
};

/// One occurrence to report.
struct EventRecord {
  EventObjectReference regarding;
  std::string reason;   ///< UpperCamelCase, e.g. "OOMKilled"
  std::string action;   ///< what was done/observed, e.g. "Killing"
  std::string note;     ///< human-readable; cut to 1024 bytes (the API's limit)
  bool warning = true;  ///< type Warning, else Normal
  /// Occurrences with equal (regarding, reason, action, series_key) form one series, as
  /// client-go's isomorphism key (which has no series_key: leave it empty for its exact
  /// behaviour; set it, e.g. to the container name, to keep series apart).
  std::string series_key;
};

struct EventWriterOptions {
  std::string reporting_controller = "podgauge.io/agent";
  std::string reporting_instance;  ///< the node name; required
  enum class Api : std::uint8_t { Auto, EventsV1, CoreV1 };
  /// Auto: events.k8s.io/v1 when discovery lists it, else core/v1 (also switched to when a
  /// create answers 404 and discovery no longer lists the group).
  Api api = Api::Auto;
  std::size_t queue_capacity = 1000;  ///< client-go's maxQueuedEvents
  /// A repeat later than this after the last occurrence starts a new Event (client-go's
  /// finishTime).
  std::chrono::milliseconds series_window = std::chrono::minutes(6);
  /// Spam filter per (regarding, reason, type), as tools/record's: a token bucket of
  /// `per_object_burst` refilled one token every `per_object_refill`.
  double per_object_burst = 25;
  std::chrono::milliseconds per_object_refill = std::chrono::minutes(5);
  /// Every occurrence, all objects together.
  double global_qps = 5;
  double global_burst = 50;
  /// Retries of 5xx, 429, 409 on a series and unreachable servers.
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  int max_attempts = 12;  ///< client-go's maxTriesPerEvent
};

struct EventWriterStats {
  std::uint64_t accepted = 0;              ///< occurrences queued
  std::uint64_t dropped_rate_limited = 0;  ///< refused by the spam filter or the global limit
  std::uint64_t dropped_queue_full = 0;
  std::uint64_t created = 0;  ///< Event objects created (POST)
  std::uint64_t patched = 0;  ///< series updates (PATCH)
  std::uint64_t retries = 0;  ///< requests repeated after a retryable failure
  std::uint64_t failed = 0;   ///< series given up: a 4xx or max_attempts reached
};

/// Thread-safety: record(), stats(), last_error(), api_version() and flush() may be called
/// from any thread; record() never blocks on the network (a short mutex only).
class EventWriter {
 public:
  /// `client` must outlive the writer. Starts the delivery thread. Throws
  /// std::invalid_argument without options.reporting_instance.
  EventWriter(ApiClient& client, EventWriterOptions options);
  /// Stops after the request in flight; call flush() first to deliver what is pending.
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  /// Queues one occurrence; false when it was dropped (rate limit or full queue; counted).
  bool record(EventRecord record) noexcept;

  /// Waits until every accepted occurrence is written or given up; false on timeout.
  bool flush(std::chrono::milliseconds timeout);

  EventWriterStats stats() const;
  /// The last delivery failure (names the verb, URL and what to grant/fix); "" if none.
  std::string last_error() const;
  /// "events.k8s.io/v1" or "v1" once chosen, "" before the first delivery.
  std::string api_version() const;

 private:
  struct Series;
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  struct Occurrence {
    EventRecord record;
    std::chrono::system_clock::time_point time;
  };

  void run();
  bool take_token(Bucket& bucket, double burst, double per_second,
                  std::chrono::steady_clock::time_point now);
  void absorb_locked(Occurrence occurrence);
  bool idle_locked() const;
  /// One request for `series` (POST or PATCH); called without the lock.
  void deliver(const std::string& key);
  bool choose_api();  // without the lock; false while discovery cannot be reached

  ApiClient& client_;
  EventWriterOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;      // worker: new work or stop
  std::condition_variable progress_;  // flush(): work done
  std::deque<Occurrence> queue_;
  std::map<std::string, std::unique_ptr<Series>> series_;  // by isomorphism key
  std::map<std::string, Bucket> spam_buckets_;
  Bucket global_bucket_;
  EventWriterStats stats_;
  std::string last_error_;
  std::string api_version_;  // "" until chosen
  bool in_flight_ = false;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace podgauge::k8s
