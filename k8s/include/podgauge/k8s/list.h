// List responses and watch events, for every kind of this module.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podgauge::k8s {

/// metav1.Status, as sent in an ERROR watch event or a failed request.
struct Status {
  std::string status;  ///< "Failure" / "Success"
  std::string message;
  std::string reason;  ///< "Expired", "Gone", "NotFound" ...
  std::int32_t code = 0;

  /// The resource version is too old: the watcher must re-list (410 Gone / Expired).
  bool expired() const noexcept { return code == 410 || reason == "Expired" || reason == "Gone"; }
  static Status from_json(const nlohmann::json& json);
};

/// A <Kind>List. T is one of Pod, Node, Namespace, ResourceQuota, LimitRange, ReplicaSet,
/// Deployment, StatefulSet, DaemonSet, Job, HorizontalPodAutoscaler.
/// Thread-safety: a value type; concurrent const use is safe.
template <class T>
struct ObjectList {
  std::vector<T> items;
  std::string resource_version;  ///< metadata.resourceVersion: where a watch starts
  std::string continue_token;    ///< metadata.continue: non-empty when more pages follow
  std::optional<std::int64_t> remaining_item_count;

  /// Throws ObjectError for the first malformed item; with `skipped` given, malformed items
  /// are left out instead and their messages appended there (an informer keeps the rest).
  static ObjectList from_json(const nlohmann::json& json, std::vector<std::string>* skipped = nullptr);
  static ObjectList parse(std::string_view json_text, std::vector<std::string>* skipped = nullptr);
};

enum class WatchEventType : std::uint8_t { Added, Modified, Deleted, Bookmark, Error };
std::string_view to_string(WatchEventType type) noexcept;

/// One line of a watch stream: {"type": ..., "object": ...}.
template <class T>
struct WatchEvent {
  WatchEventType type = WatchEventType::Added;
  std::optional<T> object;       ///< ADDED, MODIFIED, DELETED
  std::optional<Status> error;   ///< ERROR
  /// The object's (or bookmark's) metadata.resourceVersion.
  std::string resource_version;
  /// A BOOKMARK carrying the k8s.io/initial-events-end annotation (watch-list streams).
  bool initial_events_end = false;

  static WatchEvent from_json(const nlohmann::json& json);
  static WatchEvent parse(std::string_view json_text);
};

}  // namespace podgauge::k8s
