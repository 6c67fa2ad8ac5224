#pragma once
// One open watch: replays the store's events after a resourceVersion, filters them through
// the request's namespace and selectors (turning selector transitions into ADDED/DELETED, as
// the watch cache does), adds bookmarks and honours timeoutSeconds.

#include <chrono>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "object_store.h"
#include "table_printer.h"

namespace podgauge::fakeapi {

struct WatchRequest {
  const ResourceType* type = nullptr;
  std::string namespace_;
  LabelSelector labels;
  FieldSelector fields;
  std::optional<std::uint64_t> resource_version;  // nullopt: "" or "0" (send current state)
  bool send_initial_events = false;               // sendInitialEvents=true (watch-list)
  bool bookmarks = false;
  std::chrono::steady_clock::time_point deadline;
  bool as_table = false;
  IncludeObject include_object = IncludeObject::Metadata;
};

/// Used by one HTTP worker thread at a time. Thread-safety: not thread-safe.
class WatchStream {
 public:
  enum class Step { More, End };

  WatchStream(const ObjectStore& store, WatchRequest request,
              std::chrono::milliseconds bookmark_interval);

  /// Appends complete lines ("{...}\n") ready to send, waiting at most `max_wait` for a
  /// change. Returns End once the deadline passed (nothing more to send).
  Step next(std::string& out, std::chrono::milliseconds max_wait);
  /// Queues an ERROR event (e.g. the 410 Expired Status) and ends the stream after it.
  void fail(const nlohmann::json& status);

 private:
  void emit(const char* type, const nlohmann::json& object);
  void initial_state();
  bool selected(const nlohmann::json& object) const;

  const ObjectStore& store_;
  WatchRequest request_;
  std::chrono::milliseconds bookmark_interval_;
  std::chrono::steady_clock::time_point next_bookmark_;
  std::uint64_t cursor_ = 0;
  bool started_ = false;
  bool failed_ = false;
  bool headers_sent_ = false;
  std::deque<std::string> pending_;
};

}  // namespace podgauge::fakeapi
