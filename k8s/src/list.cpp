#include "podgauge/k8s/list.h"

#include <nlohmann/json.hpp>
#include <type_traits>

#include "decode.h"
#include "podgauge/k8s/pod_direct.h"

namespace podgauge::k8s {

std::string_view to_string(WatchEventType type) noexcept {
  switch (type) {
    case WatchEventType::Added: return "ADDED";
    case WatchEventType::Modified: return "MODIFIED";
    case WatchEventType::Deleted: return "DELETED";
    case WatchEventType::Bookmark: return "BOOKMARK";
    case WatchEventType::Error: return "ERROR";
  }
  return "ERROR";
}

namespace detail {

void decode(JsonValue v, const Path& path, Status& out) {
  members(v, path, [&](std::string_view k, JsonValue f) {
    const Path pk = path / k;
    if (k == "status") out.status = read_string(f, pk);
    else if (k == "message") out.message = read_string(f, pk);
    else if (k == "reason") out.reason = read_string(f, pk);
    else if (k == "code") out.code = read_int32(f, pk);
  });
}

namespace {

constexpr Path kRoot{};

// Scans the list's outer object by hand and decodes each item from its own small tape, so the
// tape of a 30 MB list never exists at once and each item's stays in cache.
class ListScanner {
 public:
  explicit ListScanner(std::string_view text) : s_(text) {}

  void ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
  }
  bool eat(char c) {
    ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw JsonSyntaxError("invalid JSON at byte " + std::to_string(pos_) + ": " + what);
  }
  bool at(char c) {
    ws();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  bool done() {
    ws();
    return pos_ == s_.size();
  }
  /// Parses the next value into `doc`.
  JsonValue value(JsonDocument& doc, std::span<const std::string_view> unread = {}) {
    doc.parse_at(s_, pos_, unread);
    return doc.root();
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

template <class T>
ObjectList<T> decode_list(std::string_view text, std::vector<std::string>* skipped) {
  const std::string list_kind = std::string(T::kKind) + "List";
  ObjectList<T> out;
  ListScanner scan(text);
  JsonDocument doc;
  try {
    if (!scan.at('{')) {
      const JsonValue root = scan.value(doc);
      fail_type(kRoot, "object", root);
    }
    scan.expect('{');
    bool first = true;
    while (!scan.eat('}')) {
      if (!first) scan.expect(',');
      first = false;
      if (!scan.at('"')) scan.fail("expected a string key");
      const std::string key = scan.value(doc).str();
      scan.expect(':');
      const Path p = kRoot / key;
      if (key == "items" && scan.at('[')) {
        out.items.clear();
        scan.expect('[');
        std::size_t i = 0;
        while (!scan.eat(']')) {
          if (i > 0) scan.expect(',');
          const JsonValue item = scan.value(doc, kUnreadSubtrees<T>);
          try {
            out.items.push_back(decode_root<T>(item, T::kKind, [](JsonValue v, const Path& path, T& o) {
              decode(v, path, o);
            }));
          } catch (const ObjectError& e) {
            if (skipped == nullptr) throw;
            skipped->push_back(list_kind + " items[" + std::to_string(i) + "]: " + e.what());
          }
          ++i;
        }
        continue;
      }
      const JsonValue value = scan.value(doc);
      if (key == "items") {
        if (!value.is_null()) fail_type(p, "array", value);
        out.items.clear();
      } else if (key == "metadata") {
        members(value, p, [&](std::string_view k, JsonValue f) {
          if (k == "resourceVersion") out.resource_version = read_string(f, p / k);
          else if (k == "continue") out.continue_token = read_string(f, p / k);
          else if (k == "remainingItemCount" && !f.is_null()) out.remaining_item_count = read_int64(f, p / k);
        });
      }
    }
    if (!scan.done()) scan.fail("unexpected data after the JSON value");
  } catch (FieldError& e) {
    throw ObjectError(list_kind, "", "", std::move(e.path), std::move(e.problem));
  }
  out.items.shrink_to_fit();
  return out;
}

std::optional<WatchEventType> parse_event_type(std::string_view text) {
  if (text == "ADDED") return WatchEventType::Added;
  if (text == "MODIFIED") return WatchEventType::Modified;
  if (text == "DELETED") return WatchEventType::Deleted;
  if (text == "BOOKMARK") return WatchEventType::Bookmark;
  if (text == "ERROR") return WatchEventType::Error;
  return std::nullopt;
}

template <class T>
WatchEvent<T> decode_event(JsonValue root) {
  WatchEvent<T> out;
  std::optional<JsonValue> object;
  try {
    if (!root.is_object()) fail_type(Path{}, "object", root);
    std::optional<WatchEventType> type;
    root.for_each_member([&](std::string_view key, JsonValue value) {
      const Path p = kRoot / key;
      if (key == "type") {
        const std::string text = read_string(value, p);
        type = parse_event_type(text);
        if (!type) {
          fail(p, "unknown watch event type \"" + text.substr(0, 40) +
                      "\" (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)");
        }
      } else if (key == "object" && !value.is_null()) {
        if (!value.is_object()) fail_type(p, "object", value);
        object = value;
      }
    });
    if (!type) fail(Path{} / "type", "required field is missing");
    if (!object) fail(Path{} / "object", "required field is missing");
    out.type = *type;
    if (out.type == WatchEventType::Error) {
      Status status;
      decode(*object, Path{} / "object", status);
      out.error = std::move(status);
      return out;
    }
    if (out.type == WatchEventType::Bookmark) {
      // A bookmark carries only metadata.resourceVersion (and the watch-list annotation).
      const Path po = kRoot / "object";
      const Path pm = po / "metadata";
      object->for_each_member([&](std::string_view key, JsonValue value) {
        if (key != "metadata") return;
        ObjectMeta meta;
        read_meta(value, pm, meta);
        out.resource_version = std::move(meta.resource_version);
        const std::string* end = meta.annotation("k8s.io/initial-events-end");
        out.initial_events_end = end != nullptr && *end == "true";
      });
      return out;
    }
  } catch (FieldError& e) {
    throw ObjectError("WatchEvent", "", "", std::move(e.path), std::move(e.problem));
  }
  out.object = decode_root<T>(*object, T::kKind, [](JsonValue v, const Path& path, T& o) { decode(v, path, o); });
  out.resource_version = out.object->metadata.resource_version;
  return out;
}

}  // namespace
}  // namespace detail

Status Status::from_json(const nlohmann::json& json) {
  const std::string text = detail::dump(json);
  const detail::JsonDocument doc(text);
  return detail::decode_root<Status>(doc.root(), "Status", [](auto v, const auto& p, Status& out) {
    detail::decode(v, p, out);
  });
}

template <class T>
ObjectList<T> ObjectList<T>::parse(std::string_view json_text, std::vector<std::string>* skipped) {
  return detail::decode_list<T>(json_text, skipped);
}

template <class T>
ObjectList<T> ObjectList<T>::from_json(const nlohmann::json& json, std::vector<std::string>* skipped) {
  return parse(detail::dump(json), skipped);
}

namespace detail {
namespace {

template <class T>
WatchEvent<T> parse_event_with_tape(std::string_view json_text) {
  // One tape per thread for the events of a watch stream: a fresh ~10 KB tape per event costs
  // an allocation that also makes malloc consolidate the old object's freed chunks.
  thread_local detail::JsonDocument doc;
  struct Release {
    detail::JsonDocument& doc;
    ~Release() { doc.release_if_larger(std::size_t{1} << 20); }
  } release{doc};
  doc.parse(json_text, detail::kUnreadSubtrees<T>);
  return detail::decode_event<T>(doc.root());
}

}  // namespace
}  // namespace detail

template <class T>
WatchEvent<T> WatchEvent<T>::parse(std::string_view json_text) {
  if constexpr (std::is_same_v<T, Pod>) {
    // The hot path of a node's pod watch; the tape decoder takes what the direct one leaves.
    if (auto event = pod_direct::decode_watch_event(json_text)) return std::move(*event);
  }
  return detail::parse_event_with_tape<T>(json_text);
}

WatchEvent<Pod> pod_direct::parse_watch_event_with_tape(std::string_view json_text) {
  return detail::parse_event_with_tape<Pod>(json_text);
}

template <class T>
WatchEvent<T> WatchEvent<T>::from_json(const nlohmann::json& json) {
  return parse(detail::dump(json));
}

#define PODGAUGE_K8S_INSTANTIATE(T) \
  template struct ObjectList<T>;    \
  template struct WatchEvent<T>;

PODGAUGE_K8S_INSTANTIATE(Pod)
PODGAUGE_K8S_INSTANTIATE(Node)
PODGAUGE_K8S_INSTANTIATE(Namespace)
PODGAUGE_K8S_INSTANTIATE(ResourceQuota)
PODGAUGE_K8S_INSTANTIATE(LimitRange)
PODGAUGE_K8S_INSTANTIATE(ReplicaSet)
PODGAUGE_K8S_INSTANTIATE(Deployment)
PODGAUGE_K8S_INSTANTIATE(StatefulSet)
PODGAUGE_K8S_INSTANTIATE(DaemonSet)
PODGAUGE_K8S_INSTANTIATE(Job)
PODGAUGE_K8S_INSTANTIATE(HorizontalPodAutoscaler)

}  // namespace podgauge::k8s
