#include "podgauge/exporters/event_json.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <nlohmann/json.hpp>

#include "utf8.h"

namespace podgauge::exporters {

namespace pb = google::protobuf;
using podgauge::v1::Event;

namespace {

const pb::OneofDescriptor& detail_oneof() {
  static const pb::OneofDescriptor* oneof = Event::descriptor()->FindOneofByName("detail");
  return *oneof;
}

void put_detail_fields(nlohmann::ordered_json& j, const pb::Message& detail) {
  const pb::Descriptor& d = *detail.GetDescriptor();
  const pb::Reflection& r = *detail.GetReflection();
  for (int i = 0; i < d.field_count(); ++i) {
    const pb::FieldDescriptor& f = *d.field(i);
    const std::string& key = f.name();
    // Details are flat, except lists of flat records (an OOM kill's memory trajectory).
    if (f.is_repeated()) {
      if (f.cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
      auto& list = j[key] = nlohmann::ordered_json::array();
      for (int k = 0; k < r.FieldSize(detail, &f); ++k) {
        nlohmann::ordered_json item = nlohmann::ordered_json::object();
        put_detail_fields(item, r.GetRepeatedMessage(detail, &f, k));
        list.push_back(std::move(item));
      }
      continue;
    }
    switch (f.cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32: j[key] = r.GetInt32(detail, &f); break;
      case pb::FieldDescriptor::CPPTYPE_INT64: j[key] = r.GetInt64(detail, &f); break;
      case pb::FieldDescriptor::CPPTYPE_UINT32: j[key] = r.GetUInt32(detail, &f); break;
      case pb::FieldDescriptor::CPPTYPE_UINT64: j[key] = r.GetUInt64(detail, &f); break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE: j[key] = r.GetDouble(detail, &f); break;
      case pb::FieldDescriptor::CPPTYPE_FLOAT: j[key] = r.GetFloat(detail, &f); break;
      case pb::FieldDescriptor::CPPTYPE_BOOL: j[key] = r.GetBool(detail, &f); break;
      case pb::FieldDescriptor::CPPTYPE_ENUM: j[key] = r.GetEnum(detail, &f)->name(); break;
      case pb::FieldDescriptor::CPPTYPE_STRING: j[key] = r.GetString(detail, &f); break;
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: break;
    }
  }
}

[[noreturn]] void bad_field(std::string_view key, std::string_view expected) {
  throw EventJsonError("invalid JSON event: field \"" + std::string(key) + "\" must be " +
                       std::string(expected));
}

template <class Int>
Int get_int(const nlohmann::json& v, std::string_view key) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(std::numeric_limits<Int>::max())) return static_cast<Int>(u);
  } else if (v.is_number_integer()) {
    const auto s = v.get<std::int64_t>();
    if (std::numeric_limits<Int>::is_signed && s >= static_cast<std::int64_t>(std::numeric_limits<Int>::min()) &&
        s <= static_cast<std::int64_t>(std::numeric_limits<Int>::max()))
      return static_cast<Int>(s);
  }
  bad_field(key, std::numeric_limits<Int>::is_signed ? "an integer in range" : "a non-negative integer in range");
}

void set_detail_field(pb::Message& detail, const pb::FieldDescriptor& f, const nlohmann::json& v) {
  const pb::Reflection& r = *detail.GetReflection();
  const std::string& key = f.name();
  switch (f.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: r.SetInt32(&detail, &f, get_int<std::int32_t>(v, key)); break;
    case pb::FieldDescriptor::CPPTYPE_INT64: r.SetInt64(&detail, &f, get_int<std::int64_t>(v, key)); break;
    case pb::FieldDescriptor::CPPTYPE_UINT32: r.SetUInt32(&detail, &f, get_int<std::uint32_t>(v, key)); break;
    case pb::FieldDescriptor::CPPTYPE_UINT64: r.SetUInt64(&detail, &f, get_int<std::uint64_t>(v, key)); break;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      if (!v.is_number()) bad_field(key, "a number");
      r.SetDouble(&detail, &f, v.get<double>());
      break;
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      if (!v.is_number()) bad_field(key, "a number");
      r.SetFloat(&detail, &f, v.get<float>());
      break;
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      if (!v.is_boolean()) bad_field(key, "true or false");
      r.SetBool(&detail, &f, v.get<bool>());
      break;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      if (!v.is_string()) bad_field(key, "an enum name");
      const auto* value = f.enum_type()->FindValueByName(v.get<std::string>());
      if (value == nullptr) bad_field(key, "a known enum name");
      r.SetEnum(&detail, &f, value);
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_STRING:
      if (!v.is_string()) bad_field(key, "a string");
      r.SetString(&detail, &f, v.get<std::string>());
      break;
    case pb::FieldDescriptor::CPPTYPE_MESSAGE: break;
  }
}

// Parses exactly `digits` decimal digits at text[pos].
int parse_digits(std::string_view text, std::size_t pos, std::size_t digits) {
  int value = 0;
  if (pos + digits > text.size()) return -1;
  for (std::size_t i = pos; i < pos + digits; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

std::string format_rfc3339_nano(std::int64_t unix_nano) {
  using namespace std::chrono;
  const nanoseconds ns{unix_nano};
  const auto secs = floor<seconds>(ns);
  const auto frac = (ns - secs).count();
  const auto day = floor<days>(secs);
  const year_month_day ymd{sys_days{day}};
  const hh_mm_ss hms{secs - day};
  char buf[48];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%09lldZ",
                              static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                              static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                              static_cast<int>(hms.minutes().count()),
                              static_cast<int>(hms.seconds().count()), static_cast<long long>(frac));
  return std::string(buf, static_cast<std::size_t>(n));
}

std::int64_t parse_rfc3339_nano(std::string_view text) {
  using namespace std::chrono;
  auto bad = [&](const char* why) -> EventJsonError {
    return EventJsonError("invalid time \"" + std::string(text) + "\": " + why +
                          " (want RFC 3339, e.g. 2026-11-30T02:24:30.123456789Z)");
  };
  const int y = parse_digits(text, 0, 4), mo = parse_digits(text, 5, 2), d = parse_digits(text, 8, 2);
  const int h = parse_digits(text, 11, 2), mi = parse_digits(text, 14, 2), s = parse_digits(text, 17, 2);
  if (text.size() < 20 || y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || s < 0 || text[4] != '-' ||
      text[7] != '-' || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || text[13] != ':' ||
      text[16] != ':')
    throw bad("malformed date or time");
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) throw bad("field out of range");
  std::size_t pos = 19;
  std::int64_t frac = 0;
  if (pos < text.size() && text[pos] == '.') {
    std::size_t digits = 0;
    for (++pos; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos, ++digits) {
      if (digits < 9) frac = frac * 10 + (text[pos] - '0');
    }
    if (digits == 0) throw bad("empty fraction");
    for (; digits < 9; ++digits) frac *= 10;
  }
  std::int64_t offset_s = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int oh = parse_digits(text, pos + 1, 2), om = parse_digits(text, pos + 4, 2);
    if (oh < 0 || om < 0 || text[pos + 3] != ':' || oh > 23 || om > 59) throw bad("malformed offset");
    offset_s = (text[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    pos += 6;
  } else {
    throw bad("missing time zone (Z or +hh:mm)");
  }
  if (pos != text.size()) throw bad("trailing characters");
  const std::int64_t secs = sys_days{ymd}.time_since_epoch().count() * 86400LL + h * 3600LL +
                            mi * 60LL + s - offset_s;
  constexpr std::int64_t kMaxSecs = std::numeric_limits<std::int64_t>::max() / 1'000'000'000 - 1;
  if (secs > kMaxSecs || secs < -kMaxSecs) throw bad("outside the representable range (1678..2261)");
  return secs * 1'000'000'000 + frac;
}

std::string to_json_line(const Event& e) {
  nlohmann::ordered_json j;
  j["seq"] = e.seq();
  j["time"] = format_rfc3339_nano(e.time_unix_nano());
  j["type"] = e.type();
  j["node"] = e.node();
  j["namespace"] = e.namespace_();
  j["pod"] = e.pod();
  j["pod_uid"] = e.pod_uid();
  j["container"] = e.container();
  j["container_id"] = e.container_id();
  j["cgroup_id"] = e.cgroup_id();
  j["pid"] = e.pid();
  j["comm"] = e.comm();
  j["cgroup"] = e.cgroup();
  j["runtime"] = e.runtime();
  j["qos"] = e.qos();
  const pb::Reflection& r = *e.GetReflection();
  if (const pb::FieldDescriptor* f = r.GetOneofFieldDescriptor(e, &detail_oneof())) {
    put_detail_fields(j, r.GetMessage(e, f));
  }
  // Kernel-supplied strings may be invalid UTF-8; never let one event break the stream.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Event from_json_line(std::string_view line) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line.begin(), line.end());
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
    throw EventJsonError(std::string("invalid JSON event line: ") + e.what());
  }
  if (!j.is_object()) throw EventJsonError("invalid JSON event line: not a JSON object");

  Event e;
  auto str = [&](const char* key, std::string* out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_string()) bad_field(key, "a string");
    *out = it->get<std::string>();
  };
  auto num = [&]<class Int>(const char* key, Int* out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    *out = get_int<Int>(*it, key);
  };
  std::uint64_t seq = 0, cgroup_id = 0;
  std::int32_t pid = 0;
  num("seq", &seq);
  num("cgroup_id", &cgroup_id);
  num("pid", &pid);
  e.set_seq(seq);
  e.set_cgroup_id(cgroup_id);
  e.set_pid(pid);
  if (auto it = j.find("time"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) bad_field("time", "an RFC 3339 string");
    e.set_time_unix_nano(parse_rfc3339_nano(it->get_ref<const std::string&>()));
  }
  str("type", e.mutable_type());
  str("node", e.mutable_node());
  str("namespace", e.mutable_namespace_());
  str("pod", e.mutable_pod());
  str("pod_uid", e.mutable_pod_uid());
  str("container", e.mutable_container());
  str("container_id", e.mutable_container_id());
  str("comm", e.mutable_comm());
  str("cgroup", e.mutable_cgroup());
  str("runtime", e.mutable_runtime());
  str("qos", e.mutable_qos());

  const pb::OneofDescriptor& oneof = detail_oneof();
  for (int i = 0; i < oneof.field_count(); ++i) {
    const pb::FieldDescriptor* f = oneof.field(i);
    if (f->name() != e.type()) continue;
    pb::Message& detail = *e.GetReflection()->MutableMessage(&e, f);
    const pb::Descriptor& d = *detail.GetDescriptor();
    for (int k = 0; k < d.field_count(); ++k) {
      const pb::FieldDescriptor& df = *d.field(k);
      auto it = j.find(df.name());
      if (it == j.end() || it->is_null()) continue;
      if (df.is_repeated()) {
        if (df.cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
        if (!it->is_array()) bad_field(df.name(), "an array of objects");
        for (const auto& item : *it) {
          if (!item.is_object()) bad_field(df.name(), "an array of objects");
          pb::Message& sub = *detail.GetReflection()->AddMessage(&detail, &df);
          const pb::Descriptor& sd = *sub.GetDescriptor();
          for (int m = 0; m < sd.field_count(); ++m) {
            const pb::FieldDescriptor& sf = *sd.field(m);
            auto si = item.find(sf.name());
            if (si == item.end() || si->is_null() || sf.is_repeated()) continue;
            set_detail_field(sub, sf, *si);
          }
        }
        continue;
      }
      set_detail_field(detail, df, *it);
    }
  }
  return e;
}

}  // namespace podgauge::exporters
