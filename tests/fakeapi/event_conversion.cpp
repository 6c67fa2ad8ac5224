#include "event_conversion.h"

#include <utility>

namespace podgauge::fakeapi {

using nlohmann::json;

namespace {

// {events.k8s.io/v1 field, core/v1 field}; the rest (metadata, eventTime, series, action,
// reason, related, reportingInstance, type) is spelled the same in both.
constexpr std::pair<const char*, const char*> kRenamed[] = {
    {"regarding", "involvedObject"},
    {"note", "message"},
    {"reportingController", "reportingComponent"},
    {"deprecatedSource", "source"},
    {"deprecatedFirstTimestamp", "firstTimestamp"},
    {"deprecatedLastTimestamp", "lastTimestamp"},
    {"deprecatedCount", "count"},
};

json rename(json event, bool to_core, const char* api_version) {
  if (!event.is_object()) return event;
  json out = json::object();
  for (auto& [key, value] : event.items()) {
    std::string name = key;
    for (const auto& [v1, core] : kRenamed) {
      if (to_core && key == v1) name = core;
      if (!to_core && key == core) name = v1;
    }
    out[name] = std::move(value);
  }
  if (out.contains("kind")) out["kind"] = "Event";
  if (out.contains("apiVersion")) out["apiVersion"] = api_version;
  return out;
}

}  // namespace

json events_v1_to_core(json event) { return rename(std::move(event), true, "v1"); }
json core_to_events_v1(json event) { return rename(std::move(event), false, "events.k8s.io/v1"); }

}  // namespace podgauge::fakeapi
