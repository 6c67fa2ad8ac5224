#include "podgauge/agent/usage_model.h"

#include "podgauge/agent/sorted_cursor.h"

namespace podgauge::agent {

std::string target_key(const UsageTarget& t) { return t.pod_uid + "/" + t.container_id; }

ContainerReading& fresh_reading(ContainerReading& r, const UsageTarget& target) {
  UsageTarget kept = std::move(r.target);
  r = ContainerReading{};
  r.target = std::move(kept);
  r.target = target;  // into the kept buffers
  return r;
}

UsageModel::UsageModel(std::vector<analysis::BreachRule> rules) : detector_(std::move(rules)) {}

std::vector<analysis::BreachEvent> UsageModel::update(const std::vector<ContainerReading>& readings,
                                                      analysis::Nanos now) {
  std::vector<analysis::BreachEvent> events;
  SortedCursor at(containers_);  // readings come in target order
  for (const auto& r : readings) {
    auto& m = at.get(r.target)->second;
    const bool first = m.last_time.count() == 0;
    if (m.key.empty()) m.key = target_key(r.target);
    if (!first && now > m.last_time) {
      const double dt = double((now - m.last_time).count()) / 1e9;
      m.cpu_cores = r.cpu_ns >= m.last_cpu_ns ? double(r.cpu_ns - m.last_cpu_ns) / 1e9 / dt : 0.0;
      if (!r.cfs || !m.last_cfs) {
        m.throttled_percent.reset();
      } else if (!r.cpu_limit_cores) {
        m.throttled_percent = 0.0;  // no quota: nothing can throttle it (and periods stop)
      } else if (r.cfs->periods > m.last_cfs->periods) {
        m.throttled_percent = 100.0 * double(r.cfs->throttled_periods - m.last_cfs->throttled_periods) /
                              double(r.cfs->periods - m.last_cfs->periods);
      } else if (*m.cpu_cores < 0.001) {
        m.throttled_percent = 0.0;  // idle: no period, nothing throttled
      }
      // else: no CFS period ended within a short interval; the last ratio still stands.
    }
    m.last_time = now;
    m.last_cpu_ns = r.cpu_ns;
    m.last_cfs = r.cfs;
    m.memory = r.memory;
    m.cpu_limit_cores = r.cpu_limit_cores;
    m.cpu_request_cores = r.cpu_request_cores;
    m.memory_request_bytes = r.memory_request_bytes;
    if (r.memory) {
      m.recent_memory.push_back({now, r.memory->working_set, r.memory->limit});
      while (!m.recent_memory.empty() && now - m.recent_memory.front().time > kRecentMemory)
        m.recent_memory.pop_front();
    }
    if (first) continue;  // rates need two readings
    analysis::UsageSample s;
    s.time = now;
    s.cpu_cores = m.cpu_cores;
    s.cpu_limit_cores = m.cpu_limit_cores;
    s.cpu_request_cores = m.cpu_request_cores;
    s.throttled_percent = m.throttled_percent;
    if (m.memory) {
      s.memory_working_set_bytes = double(m.memory->working_set);
      if (m.memory->limit) s.memory_limit_bytes = double(*m.memory->limit);
    }
    s.memory_request_bytes = m.memory_request_bytes;
    auto ev = detector_.observe(m.key, s);
    events.insert(events.end(), ev.begin(), ev.end());
  }
  return events;
}

void UsageModel::retain(const std::set<UsageTarget>& live) {
  for (auto it = containers_.begin(); it != containers_.end();) {
    if (live.count(it->first)) {
      ++it;
      continue;
    }
    detector_.forget(target_key(it->first));
    it = containers_.erase(it);
  }
}

const ContainerModel* UsageModel::find(const UsageTarget& t) const {
  auto it = containers_.find(t);
  return it == containers_.end() ? nullptr : &it->second;
}

}  // namespace podgauge::agent
