// Decodes a Pod straight from its JSON text. The tape decoder (pod.cpp over json.cpp) writes a
// node for every token of a ~6 KB pod and then walks the tape again; here each member is either
// decoded where it stands or stepped over, with the same checks. Anything unusual (a type the
// tape decoder would refuse, an escaped key, a repeated "object") gives up with Bail and the
// caller runs the tape decoder, which owns every error message. So the rule for this file is:
// never accept what the tape decoder refuses, and when both accept, build the same Pod (the
// differential test and fuzzer check both).
#include "podgauge/k8s/pod_direct.h"

#include <charconv>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "decode.h"
#include "json_scan.h"

namespace podgauge::k8s {
namespace detail {
namespace {

struct Bail {};
[[noreturn]] [[gnu::cold, gnu::noinline]] void bail() { throw Bail{}; }

// Key compares with the length known at compile time: inlined to a length check and one or two
// word compares (std::string_view's == calls memcmp, a tenth of this decoder's time).
template <std::size_t N>
[[gnu::always_inline]] inline bool is(std::string_view key, const char (&literal)[N]) noexcept {
  return key.size() == N - 1 && __builtin_memcmp(key.data(), literal, N - 1) == 0;
}

// parse_rfc3339 for the form the API server writes, "2024-05-01T10:00:00Z", with its checks and
// result (days from civil, Howard Hinnant's algorithm); any other form goes to parse_rfc3339.
std::optional<std::int64_t> parse_time(std::string_view s) noexcept {
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != 'Z') {
    return parse_rfc3339(s);
  }
  unsigned d[20];
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}) {
    d[i] = static_cast<unsigned>(static_cast<unsigned char>(s[i])) - '0';
    if (d[i] > 9) return parse_rfc3339(s);
  }
  const int y = static_cast<int>(d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]);
  const int mo = static_cast<int>(d[5] * 10 + d[6]);
  const int day = static_cast<int>(d[8] * 10 + d[9]);
  const int h = static_cast<int>(d[11] * 10 + d[12]);
  const int mi = static_cast<int>(d[14] * 10 + d[15]);
  const int sec = static_cast<int>(d[17] * 10 + d[18]);
  if (mo < 1 || mo > 12 || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60)
    return std::nullopt;
  const int yy = y - (mo <= 2 ? 1 : 0);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(yy - era * 400);
  const unsigned doy = (153 * static_cast<unsigned>(mo + (mo > 2 ? -3 : 9)) + 2) / 5 +
                       static_cast<unsigned>(day) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days =
      static_cast<std::int64_t>(era) * 146097 + static_cast<std::int64_t>(doe) - 719468;
  return days * 86400 + h * 3600 + mi * 60 + sec;
}

// kPodUnreadSubtrees by length: the tape parser skips these keys' objects and arrays checking
// only brackets and strings, and so must this decoder (checking more would only cost time;
// checking less would accept what the tape parser refuses).
class UnreadKeys {
 public:
  UnreadKeys() {
    for (std::string_view k : kPodUnreadSubtrees) {
      if (k.size() < kMaxLen) by_length_[k.size()].push_back(k);
    }
  }
  bool contains(std::string_view key) const noexcept {
    if (key.size() >= kMaxLen) return false;
    for (std::string_view k : by_length_[key.size()]) {
      if (k == key) return true;
    }
    return false;
  }

 private:
  static constexpr std::size_t kMaxLen = 32;
  std::vector<std::string_view> by_length_[kMaxLen];
};

const UnreadKeys& unread_keys() {
  static const UnreadKeys keys;
  return keys;
}

// Vectors are reserved at the length the same field had in the last pod decoded (a watch
// stream repeats the same shapes) and trimmed when that guess was wrong: a cached pod keeps no
// spare capacity, as the tape decoder reserves exactly after counting.
struct Scratch {
  std::size_t containers = 0, init_containers = 0, statuses = 0, init_statuses = 0, conditions = 0,
              owners = 0;  // the last lengths
  std::vector<std::pair<std::string_view, std::string>> strings;
  std::vector<std::pair<std::string_view, Quantity>> quantities;
  std::string text;  // an unescaped string
};

template <class T>
class ExactVector {
 public:
  explicit ExactVector(std::size_t& last) : last_(last) { items_.reserve(last); }
  T& add() { return items_.emplace_back(); }
  std::vector<T> take() {
    if (items_.capacity() != items_.size()) items_.shrink_to_fit();
    last_ = items_.size();
    return std::move(items_);
  }

 private:
  std::size_t& last_;
  std::vector<T> items_;
};

class PodReader : JsonScanner {
 public:
  PodReader(std::string_view text, Scratch& scratch)
      : JsonScanner(text), unread_(unread_keys()), scratch_(scratch) {}

  // {"type": ..., "object": {...}} and nothing after it.
  void watch_event(WatchEvent<Pod>& out) {
    skip_ws();
    std::optional<WatchEventType> type;
    bool have_object = false;
    object(1, [&](std::string_view key) {
      if (is(key, "type")) {
        std::string_view text = plain_string();
        if (is(text, "ADDED"))
          type = WatchEventType::Added;
        else if (is(text, "MODIFIED"))
          type = WatchEventType::Modified;
        else if (is(text, "DELETED"))
          type = WatchEventType::Deleted;
        else
          bail();  // BOOKMARK, ERROR and unknown types: the tape decoder's
      } else if (is(key, "object")) {
        if (have_object || peek() != '{') bail();
        have_object = true;
        out.object.emplace();
        pod(2, *out.object);
      } else {
        skip_member(key, 1);
      }
    });
    skip_ws();
    if (pos_ != s_.size() || !type || !have_object) bail();
    out.type = *type;
    out.resource_version = out.object->metadata.resource_version;
  }

  void pod(int depth, Pod& out) {
    if (peek() != '{') bail();
    bool has_metadata = false;
    object(depth, [&](std::string_view key) {
      if (is(key, "metadata")) {
        has_metadata = true;
        meta(depth + 1, out.metadata);
      } else if (is(key, "spec")) {
        spec(depth + 1, out.spec);
      } else if (is(key, "status")) {
        status(depth + 1, out.status);
      } else {
        skip_member(key, depth);
      }
    });
    if (!has_metadata || out.metadata.name.empty()) bail();
  }

 private:
  // The first byte of the value at pos_: every caller stands where the tape parser would read
  // a value, after the whitespace (colon(), array(), the entry points skip it).
  char peek() {
    if (pos_ >= s_.size()) fail("unexpected end of input");
    return s_[pos_];
  }

  // Calls f(key) for each member of the object (or null) at pos_, whose nesting depth is
  // `depth`; f consumes the value.
  template <class F>
  void object(int depth, F&& f) {
    const char c = peek();
    if (c == 'n') return scan_literal("null");
    if (c != '{') bail();
    if (depth > kMaxDepth) bail();
    members([&](std::size_t begin, std::size_t length, bool escaped) {
      if (escaped) bail();  // an escaped key: the tape decoder matches its unescaped text
      f(s_.substr(begin, length));
    });
  }

  template <class F>
  void array(int depth, F&& f) {
    const char c = peek();
    if (c == 'n') return scan_literal("null");
    if (c != '[') bail();
    if (depth > kMaxDepth) bail();
    elements(f);
  }

  // The value of a member no field is read from, in an object at `depth`: checked as the tape
  // parser checks it.
  void skip_member(std::string_view key, int depth) {
    if (pos_ < s_.size() && (s_[pos_] == '{' || s_[pos_] == '[') && unread_.contains(key)) {
      skip_container(depth);
    } else {
      skip_value(depth);
    }
  }

  void skip_value(int depth) {
    switch (peek()) {
      case '{':
        return skip_object(depth + 1);
      case '[':
        return skip_array(depth + 1);
      case '"':
        scan_string();
        return;
      case 't':
        return scan_literal("true");
      case 'f':
        return scan_literal("false");
      case 'n':
        return scan_literal("null");
      default:
        return scan_number();
    }
  }

  void skip_object(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 512 levels");
    members([&](std::size_t begin, std::size_t length, bool escaped) {
      if (escaped)
        skip_value(depth);
      else
        skip_member(s_.substr(begin, length), depth);
    });
  }

  void skip_array(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 512 levels");
    elements([&] { skip_value(depth); });
  }

  // A string's raw text (escapes untouched) at pos_; `escaped` says whether it has any.
  [[gnu::always_inline]] std::string_view raw_string(bool& escaped) {
    const std::size_t begin = pos_ + 1;
    escaped = scan_string();
    return s_.substr(begin, pos_ - 1 - begin);
  }

  // A string without escapes (anything else bails).
  std::string_view plain_string() {
    if (peek() != '"') bail();
    bool escaped = false;
    const std::string_view raw = raw_string(escaped);
    if (escaped) bail();
    return raw;
  }

  // A string's text, unescaped into scratch when it has escapes.
  std::string_view text_of_string() {
    bool escaped = false;
    const std::string_view raw = raw_string(escaped);
    if (!escaped) return raw;
    scratch_.text = unescape_json(raw);
    return scratch_.text;
  }

  // read_string: a string, or null for "".
  void string(std::string& out) {
    const char c = peek();
    if (c == '"') {
      bool escaped = false;
      const std::string_view raw = raw_string(escaped);
      out = escaped ? unescape_json(raw) : std::string(raw);
    } else if (c == 'n') {
      scan_literal("null");
      out.clear();
    } else {
      bail();
    }
  }

  // read_interned.
  void interned(InternedString& out) {
    const char c = peek();
    if (c == '"') {
      out = InternedString(text_of_string());
    } else if (c == 'n') {
      scan_literal("null");
      out = InternedString();
    } else {
      bail();
    }
  }

  // A condition's status: "True", "False" or "Unknown" (interned once), else read_interned.
  void condition_status(InternedString& out) {
    static const InternedString kTrue("True");
    static const InternedString kFalse("False");
    static const InternedString kUnknown("Unknown");
    if (peek() == '"') {
      const std::size_t begin = pos_;
      bool escaped = false;
      const std::string_view raw = raw_string(escaped);
      if (!escaped) {
        if (is(raw, "True")) return void(out = kTrue);
        if (is(raw, "False")) return void(out = kFalse);
        if (is(raw, "Unknown")) return void(out = kUnknown);
      }
      pos_ = begin;
    }
    interned(out);
  }

  // read_time: RFC 3339 (the raw text, as the tape decoder parses it), null for 0.
  std::int64_t time() {
    const char c = peek();
    if (c == 'n') {
      scan_literal("null");
      return 0;
    }
    if (c != '"') bail();
    bool escaped = false;
    const std::string_view raw = raw_string(escaped);
    // A pod repeats its timestamps (conditions, container starts): the last one is kept.
    if (!raw.empty() && raw.size() == last_time_text_.size() &&
        std::memcmp(raw.data(), last_time_text_.data(), raw.size()) == 0) {
      return last_time_;
    }
    const auto t = parse_time(raw);
    if (!t) bail();
    last_time_text_ = raw;
    last_time_ = *t;
    return *t;
  }

  bool boolean() {
    switch (peek()) {
      case 't':
        scan_literal("true");
        return true;
      case 'f':
        scan_literal("false");
        return false;
      case 'n':
        scan_literal("null");
        return false;
      default:
        bail();
    }
  }

  // read_int32: an integer literal in range, null for 0.
  std::int32_t int32() {
    const char c = peek();
    if (c == 'n') {
      scan_literal("null");
      return 0;
    }
    if (c != '-' && (c < '0' || c > '9')) bail();
    const std::size_t begin = pos_;
    scan_number();
    const char* first = s_.data() + begin;
    const char* last = s_.data() + pos_;
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || end != last) bail();
    if (value < std::numeric_limits<std::int32_t>::min() ||
        value > std::numeric_limits<std::int32_t>::max())
      bail();
    return static_cast<std::int32_t>(value);
  }

  static bool space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  }

  // read_quantity: a quantity string or a number.
  Quantity quantity() {
    const char c = peek();
    std::string_view text;
    if (c == '"') {
      text = text_of_string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      const std::size_t begin = pos_;
      scan_number();
      text = s_.substr(begin, pos_ - begin);
    } else {
      bail();
    }
    while (!text.empty() && space(text.front())) text.remove_prefix(1);
    while (!text.empty() && space(text.back())) text.remove_suffix(1);
    return Quantity::parse(text);  // QuantityError: the caller bails
  }

  // read_resource_list: null members are left out.
  ResourceList resource_list(int depth) {
    auto& entries = scratch_.quantities;
    entries.clear();
    std::size_t members = 0;
    object(depth, [&](std::string_view key) {
      ++members;
      if (peek() == 'n') return scan_literal("null");
      Quantity q = quantity();
      entries.emplace_back(key, std::move(q));
    });
    // Nearly every list names cpu and memory: interned once, not looked up for each pod.
    static const InternedString cpu(kResourceCpu);
    static const InternedString memory(kResourceMemory);
    ResourceList out;
    out.reserve(members);
    for (auto& [key, q] : entries) {
      if (is(key, "cpu")) {
        out.set_interned(cpu, std::move(q));
      } else if (is(key, "memory")) {
        out.set_interned(memory, std::move(q));
      } else {
        out.set(key, std::move(q));
      }
    }
    entries.clear();
    return out;
  }

  // read_string_map.
  StringMap string_map(int depth) {
    auto& entries = scratch_.strings;
    entries.clear();
    object(depth, [&](std::string_view key) {
      entries.emplace_back(key, std::string());
      string(entries.back().second);
    });
    StringMap out;
    out.reserve(entries.size());
    for (auto& [key, value] : entries) out.set(key, std::move(value));
    entries.clear();
    return out;
  }

  void meta(int depth, ObjectMeta& out) {
    object(depth, [&](std::string_view key) {
      if (is(key, "name")) {
        string(out.name);
      } else if (is(key, "namespace")) {
        string(out.namespace_);
      } else if (is(key, "uid")) {
        string(out.uid);
      } else if (is(key, "resourceVersion")) {
        string(out.resource_version);
      } else if (is(key, "creationTimestamp")) {
        out.creation_timestamp = time();
      } else if (is(key, "deletionTimestamp")) {
        if (peek() == 'n') return scan_literal("null");
        out.deletion_timestamp = time();
      } else if (is(key, "labels")) {
        out.labels = string_map(depth + 1);
      } else if (is(key, "annotations")) {
        out.annotations = string_map(depth + 1);
      } else if (is(key, "ownerReferences")) {
        owner_references(depth + 1, out.owner_references);
      } else {
        skip_member(key, depth);
      }
    });
  }

  void owner_references(int depth, std::vector<OwnerReference>& out) {
    ExactVector<OwnerReference> refs(scratch_.owners);
    array(depth, [&] {
      OwnerReference& ref = refs.add();
      object(depth + 1, [&](std::string_view k) {
        if (is(k, "apiVersion"))
          interned(ref.api_version);
        else if (is(k, "kind"))
          interned(ref.kind);
        else if (is(k, "name"))
          string(ref.name);
        else if (is(k, "uid"))
          string(ref.uid);
        else if (is(k, "controller"))
          ref.controller = boolean();
        else
          skip_member(k, depth + 1);
      });
    });
    out = refs.take();
  }

  ResourceRequirements requirements(int depth) {
    ResourceRequirements out;
    object(depth, [&](std::string_view key) {
      if (is(key, "requests"))
        out.requests = resource_list(depth + 1);
      else if (is(key, "limits"))
        out.limits = resource_list(depth + 1);
      else
        skip_member(key, depth);
    });
    return out;
  }

  std::vector<Container> containers(int depth, std::size_t& last) {
    ExactVector<Container> list(last);
    array(depth, [&] {
      Container& c = list.add();
      object(depth + 1, [&](std::string_view key) {
        if (is(key, "name")) {
          interned(c.name);
        } else if (is(key, "image")) {
          interned(c.image);
        } else if (is(key, "resources")) {
          c.resources = requirements(depth + 2);
        } else if (is(key, "restartPolicy")) {
          if (peek() == 'n') return scan_literal("null");
          interned(c.restart_policy.emplace());
        } else {
          skip_member(key, depth + 1);
        }
      });
      if (c.name.empty()) bail();
    });
    return list.take();
  }

  ContainerState state(int depth) {
    ContainerState out;
    object(depth, [&](std::string_view key) {
      if (peek() == 'n') return scan_literal("null");
      if (is(key, "waiting")) {
        out.kind = ContainerStateKind::Waiting;
      } else if (is(key, "running")) {
        out.kind = ContainerStateKind::Running;
      } else if (is(key, "terminated")) {
        out.kind = ContainerStateKind::Terminated;
      } else {
        return skip_member(key, depth);
      }
      object(depth + 1, [&](std::string_view k) {
        if (is(k, "reason"))
          interned(out.reason);
        else if (is(k, "message"))
          string(out.message);
        else if (is(k, "startedAt"))
          out.started_at = time();
        else if (is(k, "finishedAt"))
          out.finished_at = time();
        else if (is(k, "exitCode"))
          out.exit_code = int32();
        else if (is(k, "signal"))
          out.signal = int32();
        else
          skip_member(k, depth + 1);
      });
    });
    return out;
  }

  std::vector<ContainerStatus> statuses(int depth, std::size_t& last) {
    ExactVector<ContainerStatus> list(last);
    array(depth, [&] {
      ContainerStatus& s = list.add();
      const int d = depth + 1;
      object(d, [&](std::string_view key) {
        if (is(key, "name")) {
          interned(s.name);
        } else if (is(key, "containerID")) {
          string(s.container_id);
        } else if (is(key, "restartCount")) {
          s.restart_count = int32();
        } else if (is(key, "ready")) {
          s.ready = boolean();
        } else if (is(key, "started")) {
          if (peek() == 'n') {
            scan_literal("null");
            s.started.reset();
          } else {
            s.started = boolean();
          }
        } else if (is(key, "state")) {
          s.state = state(d + 1);
        } else if (is(key, "lastState")) {
          s.last_state = state(d + 1);
        } else if (is(key, "resources") && peek() != 'n') {
          s.resources = requirements(d + 1);
        } else if (is(key, "allocatedResources") && peek() != 'n') {
          s.allocated_resources = resource_list(d + 1);
        } else {
          skip_member(key, d);
        }
      });
      if (s.name.empty()) bail();
    });
    return list.take();
  }

  std::vector<Condition> conditions(int depth) {
    ExactVector<Condition> list(scratch_.conditions);
    array(depth, [&] {
      Condition& c = list.add();
      object(depth + 1, [&](std::string_view k) {
        if (is(k, "type"))
          interned(c.type);
        else if (is(k, "status"))
          condition_status(c.status);
        else if (is(k, "reason"))
          interned(c.reason);
        else if (is(k, "message"))
          string(c.message);
        else if (is(k, "lastTransitionTime"))
          c.last_transition_time = time();
        else
          skip_member(k, depth + 1);
      });
    });
    return list.take();
  }

  void spec(int depth, PodSpec& out) {
    object(depth, [&](std::string_view key) {
      if (is(key, "nodeName")) {
        string(out.node_name);
      } else if (is(key, "containers")) {
        out.containers = containers(depth + 1, scratch_.containers);
      } else if (is(key, "initContainers")) {
        out.init_containers = containers(depth + 1, scratch_.init_containers);
      } else if (is(key, "resources") && peek() != 'n') {
        out.resources = requirements(depth + 1);
      } else if (is(key, "overhead")) {
        out.overhead = resource_list(depth + 1);
      } else if (is(key, "priority")) {
        if (peek() == 'n') {
          scan_literal("null");
          out.priority.reset();
        } else {
          out.priority = int32();
        }
      } else if (is(key, "priorityClassName")) {
        interned(out.priority_class_name);
      } else if (is(key, "restartPolicy")) {
        interned(out.restart_policy);
      } else {
        skip_member(key, depth);
      }
    });
  }

  void status(int depth, PodStatus& out) {
    object(depth, [&](std::string_view key) {
      if (is(key, "phase")) {
        interned(out.phase);
      } else if (is(key, "qosClass")) {
        const char c = peek();
        if (c == 'n') return scan_literal("null");
        if (c != '"') bail();
        const std::string_view text = text_of_string();
        if (text.empty()) return;
        out.qos_class = parse_qos_class(text);
        if (!out.qos_class) bail();
      } else if (is(key, "podIP")) {
        string(out.pod_ip);
      } else if (is(key, "hostIP")) {
        interned(out.host_ip);
      } else if (is(key, "startTime")) {
        out.start_time = time();
      } else if (is(key, "reason")) {
        interned(out.reason);
      } else if (is(key, "conditions")) {
        out.conditions = conditions(depth + 1);
      } else if (is(key, "containerStatuses")) {
        out.container_statuses = statuses(depth + 1, scratch_.statuses);
      } else if (is(key, "initContainerStatuses")) {
        out.init_container_statuses = statuses(depth + 1, scratch_.init_statuses);
      } else if (is(key, "resize")) {
        interned(out.resize);
      } else {
        skip_member(key, depth);
      }
    });
  }

  const UnreadKeys& unread_;
  Scratch& scratch_;
  std::string_view last_time_text_;  // of the last time parsed (never "", which does not parse)
  std::int64_t last_time_ = 0;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace
}  // namespace detail

namespace pod_direct {

std::optional<WatchEvent<Pod>> decode_watch_event(std::string_view text) {
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
  try {
    WatchEvent<Pod> out;
    detail::PodReader(text, detail::scratch()).watch_event(out);
    return out;
  } catch (...) {
    // Bail, JsonSyntaxError, QuantityError: the tape decoder decides (and words the error).
    return std::nullopt;
  }
}

}  // namespace pod_direct
}  // namespace podgauge::k8s
