// Names events (namespace, pod, container) from the pod cache before they are published, and
// holds those whose pod the cache does not know yet.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "podgauge/metadata/pod_metadata_cache.h"
#include "podgauge/v1/events.pb.h"

namespace podgauge::metadata {

/// Late resolution. A container's cgroup (and so its first OOM kill) can exist before the pod
/// informer has delivered the pod, or before the kubelet has written the new container id into
/// the pod's status. Publishing such an event unnamed would lose its names for good, so it is
/// held until the cache names both its pod and its container, for at most `max_hold` (then
/// published with what is known). Waiting for "the cache is synced" would not help: a synced
/// cache is exactly what lags a brand-new pod. Events that need no names (no pod uid) or that
/// resolve at once are published immediately; with no cache (standalone) nothing is held.
/// Held events keep their own time; seq is assigned at publication, so a held event can get
/// a later seq than an event that happened after it.
/// Thread-safety: submit() and notify() from any thread; publish runs on the enricher's thread
/// or, for events that need no wait, on the submitting thread.
class EventEnricher {
 public:
  using Publish = std::function<void(podgauge::v1::Event)>;
  /// Beyond this many held events, new ones are published unnamed at once.
  static constexpr std::size_t kMaxHeld = 4096;
  EventEnricher(const PodMetadataCache* cache, std::chrono::milliseconds max_hold, Publish publish);
  /// Publishes what is still held.
  ~EventEnricher();
  EventEnricher(const EventEnricher&) = delete;
  EventEnricher& operator=(const EventEnricher&) = delete;

  void submit(podgauge::v1::Event event);
  /// The cache changed: retry held events now.
  void notify();

  std::size_t held() const;
  /// Events published only after waiting, and those whose wait ran out unnamed.
  std::uint64_t resolved_late() const;
  std::uint64_t expired_unnamed() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Held {
    podgauge::v1::Event event;
    Clock::time_point deadline;
  };
  /// Fills names; true when nothing more can be learned by waiting.
  bool name(podgauge::v1::Event& event) const;
  void run();

  const PodMetadataCache* cache_;
  std::chrono::milliseconds max_hold_;
  Publish publish_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Held> held_;
  bool dirty_ = false;
  bool stop_ = false;
  std::uint64_t resolved_late_ = 0;
  std::uint64_t expired_unnamed_ = 0;
  std::thread thread_;
};

}  // namespace podgauge::metadata
