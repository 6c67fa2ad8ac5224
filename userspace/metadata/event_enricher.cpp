#include "podgauge/metadata/event_enricher.h"

#include <algorithm>
#include <vector>

namespace podgauge::metadata {

EventEnricher::EventEnricher(const PodMetadataCache* cache, std::chrono::milliseconds max_hold,
                             Publish publish)
    : cache_(cache), max_hold_(max_hold), publish_(std::move(publish)) {
  if (cache_ && max_hold_.count() > 0) thread_ = std::thread([this] { run(); });
}

EventEnricher::~EventEnricher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool EventEnricher::name(podgauge::v1::Event& e) const {
  if (!cache_ || e.pod_uid().empty()) return true;
  const ResolvedNames n = cache_->resolve(e.pod_uid(), e.container_id());
  if (n.pod_known) {
    e.set_namespace_(n.namespace_);
    e.set_pod(n.pod);
  }
  if (n.container_known) e.set_container(n.container);
  return n.pod_known && (e.container_id().empty() || n.container_known);
}

void EventEnricher::submit(podgauge::v1::Event event) {
  if (name(event) || !thread_.joinable()) {
    publish_(std::move(event));
    return;
  }
  bool held = false;
  {
    std::lock_guard lock(mutex_);
    // An OOM storm in pods the API never names must not grow memory without bound.
    if (held_.size() < kMaxHeld) {
      held_.push_back({std::move(event), Clock::now() + max_hold_});
      held = true;
    } else {
      ++expired_unnamed_;
    }
  }
  if (held) {
    wake_.notify_all();
  } else {
    publish_(std::move(event));
  }
}

void EventEnricher::notify() {
  {
    std::lock_guard lock(mutex_);
    if (held_.empty()) return;
    dirty_ = true;
  }
  wake_.notify_all();
}

void EventEnricher::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    if (held_.empty()) {
      if (stop_) return;
      wake_.wait(lock, [&] { return stop_ || !held_.empty(); });
      continue;
    }
    Clock::time_point earliest = Clock::time_point::max();
    for (const auto& h : held_) earliest = std::min(earliest, h.deadline);
    wake_.wait_until(lock, earliest, [&] { return stop_ || dirty_; });
    dirty_ = false;
    const auto now = Clock::now();
    std::vector<podgauge::v1::Event> ready;
    for (auto it = held_.begin(); it != held_.end();) {
      const bool complete = name(it->event);
      if (complete || stop_ || now >= it->deadline) {
        if (complete)
          ++resolved_late_;
        else
          ++expired_unnamed_;
        ready.push_back(std::move(it->event));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    if (ready.empty()) continue;
    // Publishing appends to the event log, which may wake followers: not under our lock.
    lock.unlock();
    for (auto& e : ready) publish_(std::move(e));
    lock.lock();
  }
}

std::size_t EventEnricher::held() const {
  std::lock_guard lock(mutex_);
  return held_.size();
}

std::uint64_t EventEnricher::resolved_late() const {
  std::lock_guard lock(mutex_);
  return resolved_late_;
}

std::uint64_t EventEnricher::expired_unnamed() const {
  std::lock_guard lock(mutex_);
  return expired_unnamed_;
}

}  // namespace podgauge::metadata
