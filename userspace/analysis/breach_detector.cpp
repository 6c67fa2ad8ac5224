#include "podgauge/analysis/breach_detector.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>


namespace podgauge::analysis {

std::string_view to_string(BreachKind kind) {
  switch (kind) {
    case BreachKind::CpuOfLimit: return "cpu.limit";
    case BreachKind::CpuOfRequest: return "cpu.request";
    case BreachKind::MemoryOfLimit: return "memory.limit";
    case BreachKind::MemoryOfRequest: return "memory.request";
    case BreachKind::Throttling: return "throttling";
    case BreachKind::MemoryTimeToLimit: return "memory.time_to_limit";
  }
  return "unknown";
}

namespace {

double parse_number(std::string_view s, std::string_view what, std::string_view spec) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v) || v < 0)
    throw std::invalid_argument("breach rule '" + std::string(spec) + "': " + std::string(what) +
                                " '" + std::string(s) + "' is not a non-negative number");
  return v;
}

bool is_ttl(BreachKind k) { return k == BreachKind::MemoryTimeToLimit; }

}  // namespace

Nanos parse_breach_duration(std::string_view text) {
  if (text.empty()) throw std::invalid_argument("empty duration");
  double total_ns = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
    size_t k = j;
    while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k]))) ++k;
    if (j == i || k == j)
      throw std::invalid_argument("bad duration '" + std::string(text) + "': expected e.g. 30s, 5m, 1h30m");
    double v = 0;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + j, v);
    if (ec != std::errc{} || p != text.data() + j)
      throw std::invalid_argument("bad duration '" + std::string(text) + "'");
    const std::string_view unit = text.substr(j, k - j);
    double scale;
    if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else throw std::invalid_argument("bad duration unit '" + std::string(unit) + "' in '" + std::string(text) + "': use ms, s, m or h");
    total_ns += v * scale;
    i = k;
  }
  return Nanos(static_cast<int64_t>(total_ns));
}

BreachRule parse_breach_rule(std::string_view spec) {
  BreachRule r;
  r.name = std::string(spec);
  std::string_view rest = spec;
  std::string_view options;
  if (auto comma = rest.find(','); comma != std::string_view::npos) {
    options = rest.substr(comma + 1);
    rest = rest.substr(0, comma);
  }
  const auto op = rest.find_first_of("<>");
  if (op == std::string_view::npos || op + 1 >= rest.size() || rest[op + 1] != '=')
    throw std::invalid_argument("breach rule '" + std::string(spec) +
                                "': expected <what>>=<percent>%/<sustain>, e.g. memory.limit>=90%/1m, "
                                "or memory.time_to_limit<=10m/30s");
  const std::string_view what = rest.substr(0, op);
  const bool ge = rest[op] == '>';
  std::string_view value_part = rest.substr(op + 2);
  const auto slash = value_part.find('/');
  if (slash == std::string_view::npos)
    throw std::invalid_argument("breach rule '" + std::string(spec) + "': missing /<sustain>, e.g. /5m");
  const std::string_view sustain = value_part.substr(slash + 1);
  value_part = value_part.substr(0, slash);
  if (what == "cpu.limit") r.kind = BreachKind::CpuOfLimit;
  else if (what == "cpu.request") r.kind = BreachKind::CpuOfRequest;
  else if (what == "memory.limit") r.kind = BreachKind::MemoryOfLimit;
  else if (what == "memory.request") r.kind = BreachKind::MemoryOfRequest;
  else if (what == "throttling") r.kind = BreachKind::Throttling;
  else if (what == "memory.time_to_limit") r.kind = BreachKind::MemoryTimeToLimit;
  else
    throw std::invalid_argument("breach rule '" + std::string(spec) + "': unknown '" + std::string(what) +
                                "' (cpu.limit, cpu.request, memory.limit, memory.request, throttling, "
                                "memory.time_to_limit)");
  if (is_ttl(r.kind)) {
    if (ge) throw std::invalid_argument("breach rule '" + std::string(spec) + "': time_to_limit takes <=");
    r.threshold = double(parse_breach_duration(value_part).count()) / 1e9;
  } else {
    if (!ge) throw std::invalid_argument("breach rule '" + std::string(spec) + "': use >= for " + std::string(what));
    if (value_part.empty() || value_part.back() != '%')
      throw std::invalid_argument("breach rule '" + std::string(spec) + "': the threshold is a percent, e.g. 90%");
    r.threshold = parse_number(value_part.substr(0, value_part.size() - 1), "threshold", spec);
  }
  r.sustain = parse_breach_duration(sustain);
  if (r.kind == BreachKind::CpuOfLimit || r.kind == BreachKind::CpuOfRequest || r.kind == BreachKind::Throttling)
    r.smoothing = std::chrono::seconds(10);
  r.clear_after = std::min<Nanos>(r.sustain, std::chrono::seconds(30));
  while (!options.empty()) {
    auto next = options.find(',');
    std::string_view opt = options.substr(0, next);
    options = next == std::string_view::npos ? std::string_view{} : options.substr(next + 1);
    auto eq = opt.find('=');
    if (eq == std::string_view::npos)
      throw std::invalid_argument("breach rule '" + std::string(spec) + "': option '" + std::string(opt) + "' needs =");
    auto key = opt.substr(0, eq), val = opt.substr(eq + 1);
    if (key == "hysteresis") {
      if (!val.empty() && val.back() == '%') val.remove_suffix(1);
      r.hysteresis = parse_number(val, "hysteresis", spec);
    } else if (key == "clear") {
      r.clear_after = parse_breach_duration(val);
    } else if (key == "smooth") {
      r.smoothing = parse_breach_duration(val);
    } else if (key == "trend") {
      r.trend_window = parse_breach_duration(val);
    } else {
      throw std::invalid_argument("breach rule '" + std::string(spec) + "': unknown option '" + std::string(key) +
                                  "' (hysteresis, clear, smooth, trend)");
    }
  }
  return r;
}

std::vector<BreachRule> default_breach_rules() {
  return {parse_breach_rule("memory.limit>=90%/1m"), parse_breach_rule("cpu.limit>=90%/5m"),
          parse_breach_rule("throttling>=25%/1m"), parse_breach_rule("memory.time_to_limit<=10m/30s")};
}

BreachDetector::BreachDetector(std::vector<BreachRule> rules) : rules_(std::move(rules)) {}

namespace {

std::optional<double> ratio_percent(const std::optional<double>& used, const std::optional<double>& of) {
  if (!used || !of || *of <= 0) return std::nullopt;
  return 100.0 * *used / *of;
}

}  // namespace

std::optional<double> BreachDetector::value_of(const BreachRule& rule, RuleState& st, const UsageSample& s) {
  if (rule.kind == BreachKind::MemoryTimeToLimit) {
    if (!s.memory_working_set_bytes || !s.memory_limit_bytes || *s.memory_limit_bytes <= 0) return std::nullopt;
    slide(st, s.time, *s.memory_working_set_bytes, rule.trend_window, false);
    const double remaining = *s.memory_limit_bytes - *s.memory_working_set_bytes;
    if (remaining <= 0) return 0.0;
    // A trend needs a few points across at least a quarter of the window.
    if (st.window.size() < 3 || (st.window.back().first - st.window.front().first) * 4 < rule.trend_window)
      return std::numeric_limits<double>::infinity();
    // Least-squares slope in bytes per second.
    const double n = double(st.window.size());
    const double den = n * st.sxx - st.sx * st.sx;
    if (den <= 0) return std::numeric_limits<double>::infinity();
    const double slope = (n * st.sxy - st.sx * st.sy) / den;
    if (slope <= 0) return std::numeric_limits<double>::infinity();
    return remaining / slope;
  }
  std::optional<double> raw;
  switch (rule.kind) {
    case BreachKind::CpuOfLimit: raw = ratio_percent(s.cpu_cores, s.cpu_limit_cores); break;
    case BreachKind::CpuOfRequest: raw = ratio_percent(s.cpu_cores, s.cpu_request_cores); break;
    case BreachKind::MemoryOfLimit: raw = ratio_percent(s.memory_working_set_bytes, s.memory_limit_bytes); break;
    case BreachKind::MemoryOfRequest: raw = ratio_percent(s.memory_working_set_bytes, s.memory_request_bytes); break;
    case BreachKind::Throttling: raw = s.throttled_percent; break;
    case BreachKind::MemoryTimeToLimit: break;
  }
  if (!raw) {
    st.window.clear();
    return std::nullopt;
  }
  if (rule.smoothing.count() <= 0) return raw;
  slide(st, s.time, *raw, rule.smoothing, true);
  return st.y0 + st.sy / double(st.window.size());
}

void BreachDetector::slide(RuleState& st, Nanos t, double v, Nanos keep, bool inclusive) {
  constexpr std::uint32_t kRebuildEvery = 512;
  auto x_of = [&](Nanos at) { return double((at - st.origin).count()) / 1e9; };
  auto add = [&](Nanos at, double value, double sign) {
    const double x = x_of(at), y = value - st.y0;
    st.sx += sign * x, st.sy += sign * y, st.sxx += sign * x * x, st.sxy += sign * x * y;
  };
  if (st.window.empty()) {
    st.origin = t, st.y0 = v, st.updates = 0;
    st.sx = st.sy = st.sxx = st.sxy = 0;
  }
  st.window.emplace_back(t, v);
  add(t, v, 1);
  while (!st.window.empty() && (inclusive ? t - st.window.front().first >= keep : t - st.window.front().first > keep)) {
    add(st.window.front().first, st.window.front().second, -1);
    st.window.pop_front();
  }
  if (++st.updates < kRebuildEvery || st.window.empty()) return;
  st.origin = st.window.front().first, st.y0 = st.window.front().second, st.updates = 0;
  st.sx = st.sy = st.sxx = st.sxy = 0;
  for (const auto& [at, value] : st.window) add(at, value, 1);
}

std::vector<BreachEvent> BreachDetector::observe(const std::string& target, const UsageSample& s) {
  const auto entry =
      hint_.valid && hint_.next->first == target ? hint_.next : state_.try_emplace(target).first;
  hint_.next = std::next(entry);
  hint_.valid = hint_.next != state_.end();
  auto& states = entry->second;
  if (states.size() != rules_.size()) states.assign(rules_.size(), RuleState{});
  std::vector<BreachEvent> out;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const auto& rule = rules_[i];
    auto& st = states[i];
    const bool ttl = is_ttl(rule.kind);
    auto emit = [&](BreachEvent::Phase phase, double value) {
      out.push_back({phase, target, rule.name, rule.kind, value, rule.threshold, st.peak, s.time,
                     st.holding_since.value_or(s.time)});
    };
    const auto v = value_of(rule, st, s);
    if (!v) {
      // The rule cannot be evaluated any more (limit removed, container stopped reporting).
      if (st.active) emit(BreachEvent::Phase::End, std::nan(""));
      st.active = false;
      st.holding_since.reset();
      st.clearing_since.reset();
      continue;
    }
    const bool breaching = ttl ? *v <= rule.threshold : *v >= rule.threshold;
    const bool cleared = ttl ? *v > rule.threshold * (1 + rule.hysteresis / 100)
                             : *v < rule.threshold - rule.hysteresis;
    auto worse = [&](double a, double b) { return ttl ? std::min(a, b) : std::max(a, b); };
    if (!st.active) {
      if (!breaching) {
        st.holding_since.reset();
        continue;
      }
      if (!st.holding_since) {
        st.holding_since = s.time;
        st.peak = *v;
      } else {
        st.peak = worse(st.peak, *v);
      }
      if (s.time - *st.holding_since >= rule.sustain) {
        st.active = true;
        st.clearing_since.reset();
        ++started_total_[rule.name];
        emit(BreachEvent::Phase::Start, *v);
      }
      continue;
    }
    st.peak = worse(st.peak, *v);
    if (!cleared) {
      st.clearing_since.reset();
      continue;
    }
    if (!st.clearing_since) st.clearing_since = s.time;
    if (s.time - *st.clearing_since >= rule.clear_after) {
      emit(BreachEvent::Phase::End, *v);
      st.active = false;
      st.holding_since.reset();
      st.clearing_since.reset();
    }
  }
  return out;
}

void BreachDetector::forget(const std::string& target) {
  hint_.valid = false;
  state_.erase(target);
}

std::vector<ActiveBreach> BreachDetector::active() const {
  std::vector<ActiveBreach> out;
  for (const auto& [target, states] : state_)
    for (size_t i = 0; i < states.size() && i < rules_.size(); ++i)
      if (states[i].active)
        out.push_back({target, rules_[i].name, rules_[i].kind,
                       states[i].window.empty() ? states[i].peak : states[i].window.back().second,
                       rules_[i].threshold, states[i].peak, states[i].holding_since.value_or(Nanos{0})});
  return out;
}

}  // namespace podgauge::analysis
