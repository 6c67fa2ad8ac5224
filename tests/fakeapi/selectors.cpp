#include "selectors.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "api_error.h"

namespace podgauge::fakeapi {

namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Splits at commas that are not inside parentheses.
std::vector<std::string> split_top_level(std::string_view text) {
  std::vector<std::string> parts;
  int depth = 0;
  std::string cur;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(trim(cur));
  return parts;
}

bool valid_label_token(const std::string& s, bool allow_empty) {
  if (s.empty()) return allow_empty;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

ApiError selector_error(std::string_view text, const std::string& why) {
  return ApiError::bad_request("unable to parse requirement: " + why + " in selector \"" +
                               std::string(text) + "\"");
}

}  // namespace

LabelSelector LabelSelector::parse(std::string_view text) {
  LabelSelector sel;
  if (trim(text).empty()) return sel;
  for (const auto& part : split_top_level(text)) {
    if (part.empty()) throw selector_error(text, "empty requirement");
    Requirement r;
    if (part[0] == '!') {
      r.key = trim(part.substr(1));
      r.op = Op::DoesNotExist;
    } else if (auto sp = part.find_first_of(" \t("); sp != std::string::npos &&
                                                    part.find_first_of("=!<>") == std::string::npos) {
      r.key = trim(part.substr(0, sp));
      std::string rest = trim(part.substr(sp));
      if (rest.rfind("notin", 0) == 0) {
        r.op = Op::NotIn;
        rest = trim(rest.substr(5));
      } else if (rest.rfind("in", 0) == 0) {
        r.op = Op::In;
        rest = trim(rest.substr(2));
      } else {
        throw selector_error(text, "found '" + rest + "', expected: in, notin, =, ==, !=, gt, lt");
      }
      if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')')
        throw selector_error(text, "expected '(' and ')' around the values");
      std::string inner = rest.substr(1, rest.size() - 2);
      size_t start = 0;
      while (start <= inner.size()) {
        auto comma = inner.find(',', start);
        if (comma == std::string::npos) comma = inner.size();
        r.values.push_back(trim(std::string_view(inner).substr(start, comma - start)));
        start = comma + 1;
      }
    } else if (auto p = part.find("!="); p != std::string::npos) {
      r.key = trim(part.substr(0, p));
      r.op = Op::NotEquals;
      r.values = {trim(part.substr(p + 2))};
    } else if (auto p2 = part.find("=="); p2 != std::string::npos) {
      r.key = trim(part.substr(0, p2));
      r.op = Op::Equals;
      r.values = {trim(part.substr(p2 + 2))};
    } else if (auto p3 = part.find('='); p3 != std::string::npos) {
      r.key = trim(part.substr(0, p3));
      r.op = Op::Equals;
      r.values = {trim(part.substr(p3 + 1))};
    } else if (auto p4 = part.find_first_of("<>"); p4 != std::string::npos) {
      r.key = trim(part.substr(0, p4));
      r.op = part[p4] == '>' ? Op::Gt : Op::Lt;
      r.values = {trim(part.substr(p4 + 1))};
      char* end = nullptr;
      std::strtoll(r.values[0].c_str(), &end, 10);
      if (r.values[0].empty() || *end != '\0')
        throw selector_error(text, "for 'Gt', 'Lt' operators, the value must be an integer");
    } else {
      r.key = part;
      r.op = Op::Exists;
    }
    if (!valid_label_token(r.key, false)) throw selector_error(text, "invalid label key \"" + r.key + "\"");
    for (const auto& v : r.values)
      if (!valid_label_token(v, true) || v.find('/') != std::string::npos)
        throw selector_error(text, "invalid label value: \"" + v + "\"");
    sel.requirements_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::matches(const nlohmann::json& object) const {
  static const nlohmann::json empty = nlohmann::json::object();
  const auto* labels = &empty;
  if (auto m = object.find("metadata"); m != object.end() && m->is_object())
    if (auto l = m->find("labels"); l != m->end() && l->is_object()) labels = &*l;
  for (const auto& r : requirements_) {
    auto it = labels->find(r.key);
    bool has = it != labels->end() && it->is_string();
    std::string value = has ? it->get<std::string>() : "";
    auto in_values = [&] {
      return std::find(r.values.begin(), r.values.end(), value) != r.values.end();
    };
    bool ok = false;
    switch (r.op) {
      case Op::Equals: ok = has && value == r.values[0]; break;
      case Op::NotEquals: ok = !has || value != r.values[0]; break;
      case Op::In: ok = has && in_values(); break;
      case Op::NotIn: ok = !has || !in_values(); break;
      case Op::Exists: ok = has; break;
      case Op::DoesNotExist: ok = !has; break;
      case Op::Gt:
      case Op::Lt: {
        if (!has) break;
        char* end = nullptr;
        long long v = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0') break;
        long long bound = std::stoll(r.values[0]);
        ok = r.op == Op::Gt ? v > bound : v < bound;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

namespace {

// Field selectors each kind supports in the real server (pkg/registry/*/strategy.go).
const std::map<std::string, std::set<std::string>>& supported_fields() {
  static const std::map<std::string, std::set<std::string>> fields = {
      {"Pod",
       {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"}},
      {"Node", {"spec.unschedulable"}},
      {"Namespace", {"status.phase"}},
      {"Event",
       {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}},
  };
  return fields;
}

std::string field_value(const nlohmann::json& object, const std::string& field) {
  const nlohmann::json* cur = &object;
  size_t start = 0;
  std::string path = field == "source" ? "source.component" : field;
  while (start <= path.size()) {
    auto dot = path.find('.', start);
    if (dot == std::string::npos) dot = path.size();
    auto key = path.substr(start, dot - start);
    if (!cur->is_object()) return "";
    auto it = cur->find(key);
    if (it == cur->end()) return field == "spec.unschedulable" || field == "spec.hostNetwork" ? "false" : "";
    cur = &*it;
    start = dot + 1;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_null()) return "";
  return cur->dump();
}

}  // namespace

FieldSelector FieldSelector::parse(std::string_view text, std::string_view kind) {
  FieldSelector sel;
  if (trim(text).empty()) return sel;
  for (const auto& part : split_top_level(text)) {
    Term t;
    size_t p;
    size_t skip;
    if ((p = part.find("!=")) != std::string::npos) {
      t.negated = true;
      skip = 2;
    } else if ((p = part.find("==")) != std::string::npos) {
      t.negated = false;
      skip = 2;
    } else if ((p = part.find('=')) != std::string::npos) {
      t.negated = false;
      skip = 1;
    } else {
      throw ApiError::bad_request("invalid selector: '" + std::string(text) +
                                  "'; can't understand '" + part + "'");
    }
    t.field = trim(part.substr(0, p));
    t.value = trim(part.substr(p + skip));
    bool supported = t.field == "metadata.name" || t.field == "metadata.namespace";
    if (!supported) {
      auto it = supported_fields().find(std::string(kind));
      supported = it != supported_fields().end() && it->second.count(t.field) > 0;
    }
    if (!supported)
      throw ApiError::bad_request("field label not supported: " + t.field);
    sel.terms_.push_back(std::move(t));
  }
  return sel;
}

bool FieldSelector::matches(const nlohmann::json& object) const {
  for (const auto& t : terms_) {
    bool eq = field_value(object, t.field) == t.value;
    if (eq == t.negated) return false;
  }
  return true;
}

}  // namespace podgauge::fakeapi
