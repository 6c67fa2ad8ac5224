#include "podgauge/agent/container_history.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <span>
#include <nlohmann/json.hpp>

namespace podgauge::agent {

namespace {

constexpr std::pair<HistoryMetric, std::string_view> kNames[] = {
    {HistoryMetric::CpuSeconds, "cpu_seconds"},
    {HistoryMetric::WorkingSetBytes, "working_set_bytes"},
    {HistoryMetric::UsageBytes, "usage_bytes"},
    {HistoryMetric::RssBytes, "rss_bytes"},
    {HistoryMetric::CacheBytes, "cache_bytes"},
    {HistoryMetric::SwapBytes, "swap_bytes"},
    {HistoryMetric::MemoryLimitBytes, "memory_limit_bytes"},
    {HistoryMetric::CpuLimitCores, "cpu_limit_cores"},
    {HistoryMetric::CfsPeriods, "cfs_periods"},
    {HistoryMetric::CfsThrottledPeriods, "cfs_throttled_periods"},
    {HistoryMetric::CfsThrottledSeconds, "cfs_throttled_seconds"},
    {HistoryMetric::OomKills, "oom_kills"},
};

std::uint16_t id(HistoryMetric m) { return static_cast<std::uint16_t>(m); }

// FNV-1a: a container's series keep their key across restarts.
std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 14695981039346656037ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

std::optional<HistoryMetric> history_metric(std::string_view name) {
  for (const auto& [m, n] : kNames)
    if (n == name) return m;
  return std::nullopt;
}

std::string_view to_string(HistoryMetric m) {
  for (const auto& [k, n] : kNames)
    if (k == m) return n;
  return "unknown";
}

std::optional<std::pair<store::Agg, double>> history_aggregation(std::string_view name) {
  if (name == "avg") return std::pair{store::Agg::kAvg, 0.0};
  if (name == "min") return std::pair{store::Agg::kMin, 0.0};
  if (name == "max") return std::pair{store::Agg::kMax, 0.0};
  if (name == "last") return std::pair{store::Agg::kLast, 0.0};
  if (name == "rate") return std::pair{store::Agg::kRate, 0.0};
  if (name.size() >= 2 && name[0] == 'p') {
    const std::string digits(name.substr(1));
    char* end = nullptr;
    const double q = std::strtod(digits.c_str(), &end);
    if (end && *end == '\0' && q > 0 && q < 100) return std::pair{store::Agg::kPercentile, q / 100};
  }
  return std::nullopt;
}

ContainerHistory::ContainerHistory(std::chrono::milliseconds history)
    : store_([&] {
        store::Options o;
        o.history_ms = history.count();
        o.raw_retention_ms = std::min<std::int64_t>(o.raw_retention_ms, history.count());
        return o;
      }()) {
  for (auto m : {HistoryMetric::CpuSeconds, HistoryMetric::CfsPeriods, HistoryMetric::CfsThrottledPeriods,
                 HistoryMetric::CfsThrottledSeconds, HistoryMetric::OomKills})
    store_.set_kind(id(m), store::SeriesKind::kCounter);
  // A millisecond of CPU is plenty; µs noise would cost ~2 bytes a sample (bench/store_bench).
  store_.set_precision(id(HistoryMetric::CpuSeconds), 3);
  store_.set_precision(id(HistoryMetric::CfsThrottledSeconds), 3);
}

ContainerHistory::Container& ContainerHistory::container_of(const UsageTarget& t, std::uint64_t& id) {
  // fnv1a(pod_uid + "/" + container_id), without building the string every round.
  id = fnv1a(t.container_id, fnv1a("/", fnv1a(t.pod_uid)));
  auto [it, inserted] = named_.try_emplace(id);
  if (inserted) names_.emplace(id, HistoryTarget{t.pod_uid, t.container_id});
  return it->second;
}

void ContainerHistory::record(const ContainerReading& r, uint64_t oom_kills, std::int64_t t_ms) {
  std::lock_guard lock(names_mutex_);
  if (t_ms != recent_tick_) recent_tick_ = t_ms, recent_at_ = 0;
  const std::size_t at = recent_at_++;
  std::uint64_t target = 0;
  Container* found = nullptr;
  if (at < recent_.size() && recent_[at].name->container_id == r.target.container_id &&
      recent_[at].name->pod_uid == r.target.pod_uid) {
    target = recent_[at].id;
    found = recent_[at].container;
  } else {
    found = &container_of(r.target, target);
    if (auto n = names_.find(target); n != names_.end()) {
      const Recent guess{target, found, &n->second};
      if (at < recent_.size()) recent_[at] = guess;
      else if (at == recent_.size()) recent_.push_back(guess);
    }
  }
  Container& c = *found;
  Held& held = c.held;
  // A tick at or before the last one held would be refused by the store as out of order.
  if (held.ticks > 0 && t_ms <= held.t[held.ticks - 1]) return;
  const std::size_t tick = held.ticks++;
  held.t[tick] = t_ms;
  std::uint16_t& present = held.present[tick];
  present = 0;
  auto put = [&](HistoryMetric m, double v) {
    held.value[tick][id(m)] = v;
    present |= std::uint16_t(1u << id(m));
  };
  static_assert(std::tuple_size_v<Handles> == std::size(kNames) + 1, "indexed by HistoryMetric (1..12)");
  put(HistoryMetric::CpuSeconds, double(r.cpu_ns) / 1e9);
  put(HistoryMetric::OomKills, double(oom_kills));
  // Only what was read this round: a value carried over from the last slow round is no new
  // sample (and half a node's appends). Limits every round: a window's rules need one in it.
  if (r.memory) {
    if (r.usage_read) {
      put(HistoryMetric::WorkingSetBytes, double(r.memory->working_set));
      put(HistoryMetric::UsageBytes, double(r.memory->usage));
    }
    if (r.memory_read) {
      put(HistoryMetric::RssBytes, double(r.memory->rss));
      put(HistoryMetric::CacheBytes, double(r.memory->page_cache));
      put(HistoryMetric::SwapBytes, double(r.memory->swap));
    }
    if (r.memory->limit) put(HistoryMetric::MemoryLimitBytes, double(*r.memory->limit));
  }
  if (r.cpu_limit_cores) put(HistoryMetric::CpuLimitCores, *r.cpu_limit_cores);
  if (r.cfs && r.cfs_read) {
    put(HistoryMetric::CfsPeriods, double(r.cfs->periods));
    put(HistoryMetric::CfsThrottledPeriods, double(r.cfs->throttled_periods));
    put(HistoryMetric::CfsThrottledSeconds, double(r.cfs->throttled_ns) / 1e9);
  }
  if (held.ticks == kBatchTicks) flush_locked(target, c);
}

void ContainerHistory::flush_locked(std::uint64_t target, Container& c) const {
  Held& held = c.held;
  if (held.ticks == 0) return;
  // Series by series, each in time order: one store lock for the batch, and one visit to each
  // series' blocks instead of one per tick.
  flush_items_.clear();
  for (std::uint16_t m = 1; m < std::tuple_size_v<Handles>; ++m)
    for (std::size_t i = 0; i < held.ticks; ++i)
      if (held.present[i] & (1u << m))
        flush_items_.push_back({{target, m}, held.t[i], held.value[i][m], &c.handles[m]});
  store_.append_timed(flush_items_);
  held.ticks = 0;
}

void ContainerHistory::flush() const {
  std::lock_guard lock(names_mutex_);
  for (auto& [target, c] : named_) flush_locked(target, c);
}

std::vector<std::string> ContainerHistory::restore(const std::filesystem::path& dir) {
  std::vector<std::string> problems;
  const auto report = store_.restore(dir / "store.ckpt");
  problems = report.errors;
  const auto names_file = dir / "store.targets.json";
  std::ifstream in(names_file);
  if (!in) {
    if (report.found)
      problems.push_back(names_file.string() + ": missing; restored history has no container names");
    return problems;
  }
  try {
    const auto j = nlohmann::json::parse(in);
    std::lock_guard lock(names_mutex_);
    recent_.clear();
    for (const auto& [k, v] : j.items()) {
      const std::uint64_t key = std::stoull(k);
      names_[key] = HistoryTarget{v.at("pod_uid").get<std::string>(), v.at("container_id").get<std::string>()};
      named_.try_emplace(key);
    }
  } catch (const std::exception& e) {
    problems.push_back(names_file.string() + ": unreadable (" + e.what() + "); skipped, history keeps no names");
  }
  return problems;
}

store::CheckpointInfo ContainerHistory::checkpoint(const std::filesystem::path& dir, std::int64_t now_ms) {
  flush();
  store_.expire(now_ms);
  const auto info = store_.checkpoint(dir / "store.ckpt");
  // Names of the series still held, written the same atomic way (temp, fsync, rename).
  std::set<std::uint64_t> live;
  for (const auto& k : store_.keys()) live.insert(k.target);
  nlohmann::json j = nlohmann::json::object();
  {
    std::lock_guard lock(names_mutex_);
    for (auto it = names_.begin(); it != names_.end();) {
      if (!live.count(it->first)) {
        recent_.clear();
        named_.erase(it->first);
        it = names_.erase(it);
        continue;
      }
      j[std::to_string(it->first)] = {{"pod_uid", it->second.pod_uid}, {"container_id", it->second.container_id}};
      ++it;
    }
  }
  const auto final_path = dir / "store.targets.json";
  const auto tmp = dir / "store.targets.json.tmp";
  const std::string text = j.dump();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw store::StoreError("cannot write " + tmp.string() + ": " + std::strerror(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), final_path.c_str()) != 0)
    throw store::StoreError("cannot write " + final_path.string() + ": " + std::strerror(errno));
  return info;
}

std::vector<ContainerHistory::Point> ContainerHistory::query(HistoryMetric metric, store::Window w, store::Agg agg,
                                                             double quantile, const std::string& container_id) const {
  store::Selector sel;
  sel.metric = id(metric);
  std::map<std::uint64_t, HistoryTarget> names;
  {
    std::lock_guard lock(names_mutex_);
    for (auto& [target, c] : named_) flush_locked(target, c);
    names = names_;
  }
  if (!container_id.empty()) {
    for (const auto& [k, n] : names)
      if (n.container_id == container_id) sel.target = k;
    if (!sel.target) return {};
  }
  std::vector<Point> out;
  for (const auto& [key, result] : store_.query_all(sel, w, agg, quantile)) {
    auto it = names.find(key.target);
    out.push_back({it == names.end() ? HistoryTarget{} : it->second, result});
  }
  return out;
}

}  // namespace podgauge::agent
