#include "decode.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "podgauge/k8s/quantity.h"

namespace podgauge::k8s::detail {

std::string Path::str() const {
  std::vector<const Path*> chain;
  for (const Path* p = this; p != nullptr; p = p->parent) {
    if (p->index >= 0 || !p->key.empty()) chain.push_back(p);
  }
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const Path* p = *it;
    if (p->index >= 0) {
      out += '[' + std::to_string(p->index) + ']';
    } else {
      if (!out.empty()) out += '.';
      out += p->key;
    }
  }
  return out.empty() ? std::string("(root)") : out;
}

void fail(const Path& path, std::string problem) { throw FieldError{path.str(), std::move(problem)}; }

void fail_type(const Path& path, std::string_view expected, JsonValue got) {
  std::string problem = "expected ";
  problem += expected;
  problem += ", got ";
  problem += to_string(got.type());
  if (got.is_number() || got.is_bool()) {
    problem += ' ';
    problem += got.raw().substr(0, 40);
  } else if (got.is_string()) {
    problem += " \"";
    problem += got.raw().substr(0, 40);
    problem += got.raw().size() > 40 ? "...\"" : "\"";
  }
  throw FieldError{path.str(), std::move(problem)};
}

std::string read_string(JsonValue v, const Path& path) {
  if (v.is_string()) return v.str();
  if (v.is_null()) return {};
  fail_type(path, "string", v);
}

InternedString read_interned(JsonValue v, const Path& path) {
  if (v.is_string()) {
    std::string scratch;
    return InternedString(v.str_view(scratch));
  }
  if (v.is_null()) return {};
  fail_type(path, "string", v);
}

std::int64_t read_time(JsonValue v, const Path& path) {
  if (v.is_null()) return 0;
  if (!v.is_string()) fail_type(path, "RFC 3339 time string", v);
  const auto t = parse_rfc3339(v.raw());
  if (!t) fail(path, "invalid RFC 3339 time \"" + std::string(v.raw().substr(0, 40)) + "\"");
  return *t;
}

std::optional<std::string> read_optional_string(JsonValue v, const Path& path) {
  if (v.is_null()) return std::nullopt;
  return read_string(v, path);
}

bool read_bool(JsonValue v, const Path& path) {
  switch (v.type()) {
    case JsonType::True: return true;
    case JsonType::False:
    case JsonType::Null: return false;
    default: fail_type(path, "boolean", v);
  }
}

std::int64_t read_int64(JsonValue v, const Path& path) {
  if (v.is_null()) return 0;
  if (!v.is_number()) fail_type(path, "integer", v);
  const std::string_view raw = v.raw();
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), out);
  if (ec == std::errc::result_out_of_range) {
    fail(path, "integer " + std::string(raw.substr(0, 40)) + " is out of range for int64");
  }
  if (ec != std::errc() || end != raw.data() + raw.size()) {
    fail(path, "expected an integer, got " + std::string(raw.substr(0, 40)));
  }
  return out;
}

std::int32_t read_int32(JsonValue v, const Path& path) {
  const std::int64_t value = read_int64(v, path);
  if (value < INT32_MIN || value > INT32_MAX) {
    fail(path, "integer " + std::to_string(value) + " is out of range for int32");
  }
  return static_cast<std::int32_t>(value);
}

Quantity read_quantity(JsonValue v, const Path& path) {
  if (!v.is_string() && !v.is_number()) fail_type(path, "quantity string", v);
  std::string scratch;
  std::string_view text = v.is_number() ? v.raw() : v.str_view(scratch);
  // Quantity.UnmarshalJSON trims surrounding whitespace.
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n' ||
                           text.front() == '\r' || text.front() == '\v' || text.front() == '\f')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' ||
                           text.back() == '\r' || text.back() == '\v' || text.back() == '\f')) {
    text.remove_suffix(1);
  }
  try {
    return Quantity::parse(text);
  } catch (const QuantityError& e) {
    fail(path, e.what());
  }
}

ResourceList read_resource_list(JsonValue v, const Path& path) {
  ResourceList out;
  if (v.is_object()) out.reserve(count_members(v));
  members(v, path, [&](std::string_view key, JsonValue value) {
    if (value.is_null()) return;
    out.set(key, read_quantity(value, path / key));
  });
  return out;
}

StringMap read_string_map(JsonValue v, const Path& path) {
  StringMap out;
  if (v.is_object()) out.reserve(count_members(v));
  members(v, path, [&](std::string_view key, JsonValue value) {
    out.set(key, read_string(value, path / key));
  });
  return out;
}

std::vector<std::string> read_string_array(JsonValue v, const Path& path) {
  std::vector<std::string> out;
  elements(v, path, [&](JsonValue e, std::size_t i) { out.push_back(read_string(e, path[i])); });
  return out;
}

void read_meta(JsonValue v, const Path& path, ObjectMeta& out) {
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "name") {
      out.name = read_string(value, p);
    } else if (key == "namespace") {
      out.namespace_ = read_string(value, p);
    } else if (key == "uid") {
      out.uid = read_string(value, p);
    } else if (key == "resourceVersion") {
      out.resource_version = read_string(value, p);
    } else if (key == "creationTimestamp") {
      out.creation_timestamp = read_time(value, p);
    } else if (key == "deletionTimestamp") {
      if (!value.is_null()) out.deletion_timestamp = read_time(value, p);
    } else if (key == "labels") {
      out.labels = read_string_map(value, p);
    } else if (key == "annotations") {
      out.annotations = read_string_map(value, p);
    } else if (key == "ownerReferences") {
      out.owner_references.clear();
      out.owner_references.reserve(count_elements(value));
      elements(value, p, [&](JsonValue e, std::size_t i) {
        const Path pi = p[i];
        OwnerReference ref;
        members(e, pi, [&](std::string_view k, JsonValue f) {
          if (k == "apiVersion") ref.api_version = read_interned(f, pi / k);
          else if (k == "kind") ref.kind = read_interned(f, pi / k);
          else if (k == "name") ref.name = read_string(f, pi / k);
          else if (k == "uid") ref.uid = read_string(f, pi / k);
          else if (k == "controller") ref.controller = read_bool(f, pi / k);
        });
        out.owner_references.push_back(std::move(ref));
      });
    }
  });
}

void require_name(const ObjectMeta& meta, const Path& path) {
  if (meta.name.empty()) fail(path / "metadata" / "name", "required field is missing");
}

LabelSelector read_label_selector(JsonValue v, const Path& path) {
  LabelSelector out;
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "matchLabels") {
      out.match_labels = read_string_map(value, p);
    } else if (key == "matchExpressions") {
      elements(value, p, [&](JsonValue e, std::size_t i) {
        const Path pi = p[i];
        LabelSelectorRequirement r;
        members(e, pi, [&](std::string_view k, JsonValue f) {
          if (k == "key") r.key = read_string(f, pi / k);
          else if (k == "operator") r.operator_ = read_string(f, pi / k);
          else if (k == "values") r.values = read_string_array(f, pi / k);
        });
        out.match_expressions.push_back(std::move(r));
      });
    }
  });
  return out;
}

std::vector<Condition> read_conditions(JsonValue v, const Path& path) {
  std::vector<Condition> out;
  out.reserve(count_elements(v));
  elements(v, path, [&](JsonValue e, std::size_t i) {
    const Path pi = path[i];
    Condition c;
    members(e, pi, [&](std::string_view k, JsonValue f) {
      if (k == "type") c.type = read_interned(f, pi / k);
      else if (k == "status") c.status = read_interned(f, pi / k);
      else if (k == "reason") c.reason = read_interned(f, pi / k);
      else if (k == "message") c.message = read_string(f, pi / k);
      else if (k == "lastTransitionTime") c.last_transition_time = read_time(f, pi / k);
    });
    out.push_back(std::move(c));
  });
  return out;
}

Identity peek_identity(JsonValue object) {
  Identity id;
  object.for_each_member([&](std::string_view key, JsonValue value) {
    if (key != "metadata" || !value.is_object()) return;
    value.for_each_member([&](std::string_view k, JsonValue f) {
      if (!f.is_string()) return;
      if (k == "name") id.name = f.str();
      if (k == "namespace") id.namespace_ = f.str();
    });
  });
  return id;
}

std::string dump(const nlohmann::json& json) {
  // Invalid UTF-8 in a string is replaced rather than thrown on, as Go's encoder does.
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace podgauge::k8s::detail
