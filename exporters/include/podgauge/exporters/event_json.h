#pragma once
// NDJSON form of podgauge.v1.Event: what `podgauge tail -o json` prints and /v1/events serves.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "podgauge/v1/events.pb.h"

namespace podgauge::exporters {

/// A line that is not a valid JSON event (bad JSON, wrong field type, bad time).
class EventJsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One JSON object without a trailing newline. Keys, in order: seq, time, type, node, namespace,
/// pod, pod_uid, container, container_id, cgroup_id, pid, comm, cgroup, runtime, qos, then the
/// fields of the set detail (e.g. oom_kill's tgid, rss_bytes, ...) flattened as numbers.
std::string to_json_line(const podgauge::v1::Event& event);

/// Inverse of to_json_line. Missing keys keep their defaults and unknown keys are ignored, so
/// older and newer agents interoperate; the detail is chosen by `type`. Throws EventJsonError.
podgauge::v1::Event from_json_line(std::string_view line);

/// RFC 3339 UTC with nanoseconds, e.g. 2026-11-30T02:24:30.123456789Z.
std::string format_rfc3339_nano(std::int64_t unix_nano);

/// Accepts RFC 3339 with 0-9 fractional digits and `Z` or a ±hh:mm offset. Throws EventJsonError.
std::int64_t parse_rfc3339_nano(std::string_view text);

}  // namespace podgauge::exporters
