#include <algorithm>

#include "podgauge/k8s/error.h"
#include "podgauge/k8s/meta.h"
#include "podgauge/k8s/resources.h"

namespace podgauge::k8s {

namespace {
std::string describe(const std::string& kind, const std::string& ns, const std::string& name,
                     const std::string& field, const std::string& problem) {
  std::string out = kind.empty() ? std::string("object") : kind;
  if (name.empty()) {
    out += " (unnamed)";
  } else {
    out += " \"";
    if (!ns.empty()) out += ns + "/";
    out += name + "\"";
  }
  out += ": ";
  if (!field.empty()) out += field + ": ";
  out += problem;
  return out;
}
}  // namespace

ObjectError::ObjectError(std::string kind, std::string namespace_, std::string name, std::string field,
                         std::string problem)
    : std::runtime_error(describe(kind, namespace_, name, field, problem)),
      kind_(std::move(kind)),
      namespace__(std::move(namespace_)),
      name_(std::move(name)),
      field_(std::move(field)),
      problem_(std::move(problem)) {}

const OwnerReference* ObjectMeta::controller() const noexcept {
  for (const auto& ref : owner_references) {
    if (ref.controller) return &ref;
  }
  return nullptr;
}

bool LabelSelector::matches(const StringMap& labels) const {
  for (const auto& [key, value] : match_labels) {
    const std::string* have = labels.find(key);
    if (have == nullptr || *have != value) return false;
  }
  for (const auto& r : match_expressions) {
    const std::string* have = labels.find(r.key);
    const bool listed = have != nullptr && std::find(r.values.begin(), r.values.end(), *have) != r.values.end();
    if (r.operator_ == "In") {
      if (!listed) return false;
    } else if (r.operator_ == "NotIn") {
      if (listed) return false;
    } else if (r.operator_ == "Exists") {
      if (have == nullptr) return false;
    } else if (r.operator_ == "DoesNotExist") {
      if (have != nullptr) return false;
    } else {
      return false;
    }
  }
  return true;
}

const Condition* find_condition(const std::vector<Condition>& conditions, std::string_view type) noexcept {
  for (const auto& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

void ResourceList::add(const ResourceList& other) {
  for (const auto& [name, quantity] : other) {
    if (const Quantity* have = find(name)) {
      set(name, *have + quantity);
    } else {
      set(name, quantity);
    }
  }
}

void ResourceList::max_with(const ResourceList& other) {
  for (const auto& [name, quantity] : other) {
    const Quantity* have = find(name);
    if (have == nullptr || quantity.compare(*have) > 0) set(name, quantity);
  }
}

std::string ResourceList::to_string() const {
  std::string out;
  for (const auto& [name, quantity] : *this) {
    if (!out.empty()) out += ", ";
    out += name + "=" + quantity.to_string();
  }
  return out;
}

ResourceList operator+(ResourceList a, const ResourceList& b) {
  a.add(b);
  return a;
}

}  // namespace podgauge::k8s

namespace podgauge::k8s {

std::optional<std::int64_t> parse_rfc3339(std::string_view s) noexcept {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  auto num = [&](std::size_t at, std::size_t n, int& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!num(0, 4, y) || s.size() < 20 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' || !num(8, 2, d) ||
      (s[10] != 'T' && s[10] != 't') || !num(11, 2, h) || s[13] != ':' || !num(14, 2, mi) || s[16] != ':' ||
      !num(17, 2, sec)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  std::size_t pos = 19;
  if (s[pos] == '.') {
    const std::size_t start = ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  std::int64_t offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!num(pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !num(pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (s[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  // Days from civil (Howard Hinnant's algorithm).
  const int yy = y - (mo <= 2 ? 1 : 0);
  const int era = (yy >= 0 ? yy : yy - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(yy - era * 400);
  const unsigned doy = (153 * static_cast<unsigned>(mo + (mo > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + static_cast<std::int64_t>(doe) - 719468;
  return days * 86400 + h * 3600 + mi * 60 + sec - offset;
}

}  // namespace podgauge::k8s
