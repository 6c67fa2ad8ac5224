#include "podgauge/k8s/event_writer.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace podgauge::k8s {

using nlohmann::json;
using std::chrono::steady_clock;
using std::chrono::system_clock;

struct EventWriter::Series {
  EventRecord record;  // the first occurrence's, as client-go keeps in its cache
  std::string name;
  std::string namespace_;
  system_clock::time_point first_time;
  system_clock::time_point last_observed;
  std::uint64_t count = 0;
  std::uint64_t written = 0;  // the count the server holds
  bool exists = false;        // the object is on the server
  steady_clock::time_point next_attempt{};
  int attempts = 0;
  bool rediscovered = false;
};

namespace {

constexpr std::size_t kNoteLimit = 1024;  // validation: noteLengthLimit
constexpr std::size_t kMaxSpamBuckets = 4096;

std::string rfc3339(system_clock::time_point t, bool micro) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (micro)
    std::snprintf(buf + n, sizeof buf - n, ".%06dZ", static_cast<int>(us % 1000000));
  else
    std::snprintf(buf + n, sizeof buf - n, "Z");
  return buf;
}

// Cuts at a UTF-8 character boundary.
std::string cut_note(std::string note) {
  if (note.size() <= kNoteLimit) return note;
  std::size_t n = kNoteLimit;
  while (n > 0 && (static_cast<unsigned char>(note[n]) & 0xC0) == 0x80) --n;
  note.resize(n);
  return note;
}

json reference(const EventObjectReference& r) {
  json j = {{"kind", r.kind}, {"name", r.name}, {"apiVersion", r.api_version}};
  if (!r.namespace_.empty()) j["namespace"] = r.namespace_;
  if (!r.uid.empty()) j["uid"] = r.uid;
  if (!r.field_path.empty()) j["fieldPath"] = r.field_path;
  return j;
}

std::string object_key(const EventObjectReference& r) {
  std::string k;
  for (const auto* s : {&r.kind, &r.namespace_, &r.name, &r.uid, &r.api_version, &r.field_path}) {
    k += *s;
    k += '\x1f';
  }
  return k;
}

std::string events_path(const std::string& api_version, const std::string& ns) {
  return (api_version == "v1" ? "/api/v1/namespaces/" : "/apis/events.k8s.io/v1/namespaces/") +
         url_escape(ns) + "/events";
}

}  // namespace

EventWriter::EventWriter(ApiClient& client, EventWriterOptions options)
    : client_(client),
      options_(std::move(options)),
      global_bucket_{options_.global_burst, steady_clock::now()} {
  if (options_.reporting_instance.empty())
    throw std::invalid_argument(
        "EventWriter: reporting_instance (the node name) is required; the API server rejects "
        "Events without reportingInstance");
  if (options_.api == EventWriterOptions::Api::EventsV1) api_version_ = "events.k8s.io/v1";
  if (options_.api == EventWriterOptions::Api::CoreV1) api_version_ = "v1";
  worker_ = std::thread([this] { run(); });
}

EventWriter::~EventWriter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

bool EventWriter::take_token(Bucket& bucket, double burst, double per_second,
                             steady_clock::time_point now) {
  const double elapsed = std::chrono::duration<double>(now - bucket.at).count();
  bucket.tokens = std::min(burst, bucket.tokens + elapsed * per_second);
  bucket.at = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

bool EventWriter::record(EventRecord record) noexcept {
  try {
    const auto now = steady_clock::now();
    Occurrence occ{std::move(record), system_clock::now()};
    occ.record.note = cut_note(std::move(occ.record.note));
    std::string spam_key = object_key(occ.record.regarding) + occ.record.reason +
                           (occ.record.warning ? "\x1fW" : "\x1fN");
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= options_.queue_capacity) {
        ++stats_.dropped_queue_full;
        return false;
      }
      const double refill_per_second =
          1.0 / std::max(1e-9, std::chrono::duration<double>(options_.per_object_refill).count());
      if (spam_buckets_.size() > kMaxSpamBuckets) {
        // A bucket refilled to its burst is the same as none: forget those.
        for (auto it = spam_buckets_.begin(); it != spam_buckets_.end();) {
          const double t =
              it->second.tokens +
              std::chrono::duration<double>(now - it->second.at).count() * refill_per_second;
          it = t >= options_.per_object_burst ? spam_buckets_.erase(it) : std::next(it);
        }
      }
      auto it = spam_buckets_.try_emplace(spam_key, Bucket{options_.per_object_burst, now}).first;
      // Both limits are checked before either token is spent.
      Bucket key_probe = it->second, global_probe = global_bucket_;
      if (!take_token(key_probe, options_.per_object_burst, refill_per_second, now) ||
          !take_token(global_probe, options_.global_burst, options_.global_qps, now)) {
        ++stats_.dropped_rate_limited;
        return false;
      }
      it->second = key_probe;
      global_bucket_ = global_probe;
      queue_.push_back(std::move(occ));
      ++stats_.accepted;
    }
    wake_.notify_one();
    return true;
  } catch (...) {
    return false;
  }
}

void EventWriter::absorb_locked(Occurrence occ) {
  std::string key = object_key(occ.record.regarding) + occ.record.reason + '\x1f' +
                    occ.record.action + '\x1f' + occ.record.series_key;
  auto& slot = series_[key];
  if (slot && occ.time - slot->last_observed <= options_.series_window) {
    ++slot->count;
    slot->last_observed = std::max(slot->last_observed, occ.time);
    return;
  }
  auto s = std::make_unique<Series>();
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(occ.time.time_since_epoch()).count();
  char hex[32];
  std::snprintf(hex, sizeof hex, "%" PRIx64, static_cast<std::uint64_t>(nanos));
  s->name = occ.record.regarding.name + "." + hex;
  // Events about cluster-scoped objects live in "default", as client-go puts them.
  s->namespace_ =
      occ.record.regarding.namespace_.empty() ? "default" : occ.record.regarding.namespace_;
  s->first_time = s->last_observed = occ.time;
  s->count = 1;
  s->record = std::move(occ.record);
  slot = std::move(s);
}

bool EventWriter::idle_locked() const {
  if (!queue_.empty() || in_flight_) return false;
  for (const auto& [key, s] : series_)
    if (s->count != s->written) return false;
  return true;
}

bool EventWriter::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return progress_.wait_for(lock, timeout, [&] { return idle_locked(); });
}

EventWriterStats EventWriter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::string EventWriter::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

std::string EventWriter::api_version() const {
  std::lock_guard lock(mutex_);
  return api_version_;
}

void EventWriter::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    while (!queue_.empty()) {
      absorb_locked(std::move(queue_.front()));
      queue_.pop_front();
    }
    const auto now = steady_clock::now();
    const auto wall = system_clock::now();
    std::string due;
    auto earliest = steady_clock::time_point::max();
    for (auto it = series_.begin(); it != series_.end();) {
      Series& s = *it->second;
      if (s.count == s.written) {
        // A finished series is forgotten; the next occurrence starts a new Event.
        if (wall - s.last_observed > options_.series_window) {
          it = series_.erase(it);
          continue;
        }
        earliest = std::min(
            earliest, steady_clock::now() + (options_.series_window -
                                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 wall - s.last_observed)));
      } else if (s.next_attempt <= now) {
        if (due.empty()) due = it->first;
      } else {
        earliest = std::min(earliest, s.next_attempt);
      }
      ++it;
    }
    if (!due.empty()) {
      in_flight_ = true;
      lock.unlock();
      deliver(due);
      lock.lock();
      in_flight_ = false;
      progress_.notify_all();
      continue;
    }
    progress_.notify_all();
    if (earliest == steady_clock::time_point::max())
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    else
      wake_.wait_until(lock, earliest, [&] { return stop_ || !queue_.empty(); });
  }
}

bool EventWriter::choose_api() {
  {
    std::lock_guard lock(mutex_);
    if (!api_version_.empty()) return true;
  }
  std::string chosen;
  try {
    client_.get("/apis/events.k8s.io/v1");
    chosen = "events.k8s.io/v1";
  } catch (const ApiError& e) {
    if (e.kind() == ApiErrorKind::NotFound)
      chosen = "v1";  // before Kubernetes 1.19
    else if (e.retryable())
      throw;
    else
      chosen = "events.k8s.io/v1";  // discovery refused: let the create itself tell
  }
  std::lock_guard lock(mutex_);
  api_version_ = chosen;
  return true;
}

void EventWriter::deliver(const std::string& key) {
  std::string method, path, body, api;
  std::uint64_t count = 0;
  try {
    choose_api();
    std::lock_guard lock(mutex_);
    Series& s = *series_.at(key);
    api = api_version_;
    count = s.count;
    const bool v1 = api != "v1";
    if (s.exists) {
      method = "PATCH";
      path = events_path(api, s.namespace_) + "/" + url_escape(s.name);
      if (v1)
        body = json{{"series",
                     {{"count", count}, {"lastObservedTime", rfc3339(s.last_observed, true)}}}}
                   .dump();
      else  // tools/record's EventCorrelator patch
        body = json{{"count", count},
                    {"lastTimestamp", rfc3339(s.last_observed, false)},
                    {"message", s.record.note}}
                   .dump();
    } else {
      method = "POST";
      path = events_path(api, s.namespace_);
      json e = {{"apiVersion", api},
                {"kind", "Event"},
                {"metadata", {{"name", s.name}, {"namespace", s.namespace_}}},
                {"reason", s.record.reason},
                {"action", s.record.action},
                {"type", s.record.warning ? "Warning" : "Normal"},
                {"reportingInstance", options_.reporting_instance}};
      if (v1) {
        e["eventTime"] = rfc3339(s.first_time, true);
        e["regarding"] = reference(s.record.regarding);
        e["note"] = s.record.note;
        e["reportingController"] = options_.reporting_controller;
        if (count > 1)
          e["series"] = {{"count", count}, {"lastObservedTime", rfc3339(s.last_observed, true)}};
      } else {
        e["involvedObject"] = reference(s.record.regarding);
        e["message"] = s.record.note;
        e["reportingComponent"] = options_.reporting_controller;
        e["source"] = {{"component", options_.reporting_controller},
                       {"host", options_.reporting_instance}};
        e["firstTimestamp"] = rfc3339(s.first_time, false);
        e["lastTimestamp"] = rfc3339(s.last_observed, false);
        e["count"] = count;
      }
      body = e.dump();
    }
  } catch (const ApiError& e) {
    // Discovery failed; handled below like the request itself.
    method.clear();
    std::lock_guard lock(mutex_);
    last_error_ = e.what();
    Series& s = *series_.at(key);
    ++s.attempts;
    if (s.attempts >= options_.max_attempts) {
      ++stats_.failed;
      series_.erase(key);
      return;
    }
    ++stats_.retries;
    auto backoff = options_.initial_backoff * (1LL << std::min(s.attempts - 1, 20));
    s.next_attempt =
        steady_clock::now() + std::min<std::chrono::milliseconds>(backoff, options_.max_backoff);
    return;
  }

  try {
    if (method == "PATCH")
      client_.patch(path, body, "application/strategic-merge-patch+json");
    else
      client_.post(path, body);
    std::lock_guard lock(mutex_);
    Series& s = *series_.at(key);
    s.exists = true;
    s.written = std::max(s.written, count);
    s.attempts = 0;
    ++(method == "PATCH" ? stats_.patched : stats_.created);
    return;
  } catch (const ApiError& e) {
    std::lock_guard lock(mutex_);
    Series& s = *series_.at(key);
    const int code = e.http_status();
    if (method == "PATCH" && code == 404) {
      // Deleted meanwhile (or expired by the server's TTL): create it again with its series.
      s.exists = false;
      s.next_attempt = {};
      return;
    }
    if (method == "POST" && code == 409) {
      // A create whose answer we lost: the object is there with the first occurrence.
      s.exists = true;
      s.written = std::max<std::uint64_t>(s.written, 1);
      return;
    }
    if (method == "POST" && code == 404 && options_.api == EventWriterOptions::Api::Auto &&
        api != "v1" && !s.rediscovered) {
      // The group may be gone (or a missing namespace): look again, once, before giving up.
      api_version_.clear();
      s.rediscovered = true;
      return;
    }
    last_error_ = e.what();
    const bool retry = e.retryable() || code == 409 || code == 429;
    if (retry) ++s.attempts;
    if (!retry || s.attempts >= options_.max_attempts) {
      ++stats_.failed;
      series_.erase(key);
      return;
    }
    ++stats_.retries;
    auto backoff = options_.initial_backoff * (1LL << std::min(s.attempts - 1, 20));
    s.next_attempt =
        steady_clock::now() + std::min<std::chrono::milliseconds>(backoff, options_.max_backoff);
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    last_error_ = method + " " + path + ": " + e.what();
    ++stats_.failed;
    series_.erase(key);
  }
}

}  // namespace podgauge::k8s
