// Limit-breach detection: usage against limits and requests, sustained over a window, with
// hysteresis; CPU throttling; memory time-to-limit from the trend.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podgauge::analysis {

using Nanos = std::chrono::nanoseconds;

enum class BreachKind {
  CpuOfLimit,         // CPU usage (cores) / CPU limit, percent
  CpuOfRequest,       // CPU usage / CPU request, percent
  MemoryOfLimit,      // working set / memory limit, percent
  MemoryOfRequest,    // working set / memory request, percent
  Throttling,         // throttled CFS periods / periods, percent
  MemoryTimeToLimit,  // seconds until the working set reaches the limit at its current trend
};
std::string_view to_string(BreachKind kind);

/// One rule. For every kind but MemoryTimeToLimit the condition is value >= threshold (a
/// percent); for MemoryTimeToLimit it is value <= threshold (seconds).
struct BreachRule {
  std::string name;  // e.g. "memory.limit>=90%/1m"; what events and metrics call the rule
  BreachKind kind = BreachKind::MemoryOfLimit;
  double threshold = 90;
  Nanos sustain = std::chrono::minutes(1);  // the condition must hold this long to start
  double hysteresis = 5;  // ends only once value < threshold - hysteresis (TTL: > threshold × (1 + h/100))
  Nanos clear_after = std::chrono::seconds(30);  // ... for this long
  Nanos smoothing{0};  // the value is the mean over this trailing window (CPU is noisy at 1 s)
  Nanos trend_window = std::chrono::minutes(2);  // MemoryTimeToLimit: regression window
};

/// Parses a rule: `<what><op><threshold>/<sustain>[,hysteresis=<pct>][,clear=<dur>][,smooth=<dur>]`
/// with what ∈ cpu.limit, cpu.request, memory.limit, memory.request, throttling (op >=, value
/// in %), or memory.time_to_limit (op <=, value a duration). E.g. "cpu.limit>=90%/5m",
/// "throttling>=25%/1m", "memory.time_to_limit<=10m/30s". Throws std::invalid_argument saying
/// what is wrong.
BreachRule parse_breach_rule(std::string_view spec);
/// The defaults: memory.limit>=90%/1m, cpu.limit>=90%/5m (10 s smoothing),
/// throttling>=25%/1m (10 s smoothing), memory.time_to_limit<=10m/30s.
std::vector<BreachRule> default_breach_rules();
/// "500ms", "30s", "5m", "1h30m" -> nanoseconds. Throws std::invalid_argument.
Nanos parse_breach_duration(std::string_view text);

/// What one container did in one sampling interval. Absent limits/requests disable the rules
/// that need them.
struct UsageSample {
  Nanos time{0};
  std::optional<double> cpu_cores;  // average cores used over the interval
  std::optional<double> cpu_limit_cores, cpu_request_cores;
  std::optional<double> memory_working_set_bytes;
  std::optional<double> memory_limit_bytes, memory_request_bytes;
  std::optional<double> throttled_percent;  // throttled periods / periods over the interval
};

struct BreachEvent {
  enum class Phase { Start, End } phase = Phase::Start;
  std::string target;  // the caller's key for the container
  std::string rule;
  BreachKind kind = BreachKind::MemoryOfLimit;
  double value = 0;      // at this moment (smoothed)
  double threshold = 0;
  double peak = 0;       // worst value since the condition began
  Nanos time{0};
  Nanos since{0};        // when the condition began to hold
};

/// An active breach, for gauges and `podgauge breaches`.
struct ActiveBreach {
  std::string target;
  std::string rule;
  BreachKind kind;
  double value, threshold, peak;
  Nanos since;
};

/// Evaluates rules on each container's samples, in time order per target.
/// Thread-safety: not thread-safe; the agent calls it from its sampling thread under its lock.
class BreachDetector {
 public:
  explicit BreachDetector(std::vector<BreachRule> rules = default_breach_rules());

  /// Feeds one sample; returns the breaches that started or ended with it.
  std::vector<BreachEvent> observe(const std::string& target, const UsageSample& sample);
  /// Ends every breach of a target that is gone (no event: the container no longer exists).
  void forget(const std::string& target);
  std::vector<ActiveBreach> active() const;
  const std::vector<BreachRule>& rules() const { return rules_; }
  /// Breaches started since construction, per rule name.
  const std::map<std::string, uint64_t>& started_total() const { return started_total_; }

 private:
  struct RuleState {
    std::deque<std::pair<Nanos, double>> window;  // smoothing samples (or the trend's)
    // Running sums over `window`, kept as samples come and go: every rule is evaluated every
    // round for every container, and adding its whole window again each time (120 points for the
    // default 2 min trend) was a few % of the agent's CPU. x is seconds since `origin`, y the value
    // less `y0` (both near zero keeps the sums exact enough); rebuilt from the window every
    // kRebuildEvery updates so rounding cannot pile up.
    Nanos origin{0};
    double y0 = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    std::uint32_t updates = 0;
    std::optional<Nanos> holding_since;  // the start condition holds continuously since
    std::optional<Nanos> clearing_since;  // while active: below the end condition since
    bool active = false;
    double peak = 0;
  };
  std::optional<double> value_of(const BreachRule& rule, RuleState& st, const UsageSample& s);
  // Adds a sample to the window, then drops those older than `keep` (or, with `inclusive`, as
  // old as `keep`) and keeps the sums.
  static void slide(RuleState& st, Nanos t, double v, Nanos keep, bool inclusive);

  std::vector<BreachRule> rules_;
  using StateMap = std::map<std::string, std::vector<RuleState>>;
  StateMap state_;  // target -> one state per rule
  // The entry after the last one observed: a round observes its targets in order, so most
  // lookups are one comparison. Not carried over by a copy or a move (it would name the other
  // map's entry).
  struct Hint {
    StateMap::iterator next;
    bool valid = false;
    Hint() = default;
    Hint(const Hint&) {}
    Hint& operator=(const Hint&) {
      valid = false;
      return *this;
    }
  };
  Hint hint_;
  std::map<std::string, uint64_t> started_total_;
};

}  // namespace podgauge::analysis
