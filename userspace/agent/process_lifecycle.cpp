#include "podgauge/agent/process_lifecycle.h"

#include <algorithm>

namespace podgauge::agent {

using exporters::Label;
using exporters::MetricType;

namespace {

UsageTarget target_of_identity(const cgroup::CgroupIdentity& id) {
  ResolvedCgroup r;
  r.identity = id;
  return target_of(r);
}

bool by_cpu_desc(const ProcessView& a, const ProcessView& b) {
  return a.cpu_seconds > b.cpu_seconds;
}

nlohmann::json to_json(const ProcessView& p) {
  nlohmann::json j{{"pid", p.pid},
                   {"ppid", p.ppid},
                   {"comm", p.comm},
                   {"cpu_seconds", p.cpu_seconds},
                   {"state", p.exited ? "exited" : "running"},
                   {"container_main", p.container_main},
                   {"host_pid_namespace", p.host_pid_ns},
                   {"pid_namespace", p.pid_ns}};
  if (p.exited) {
    j["exit_code"] = p.exit_code;
    j["signal"] = p.signal;
  } else {
    j["cpu_cores"] = p.cpu_cores;
    j["rss_bytes"] = p.rss_bytes;
  }
  return j;
}

}  // namespace

void ProcessLifecycle::observe_counts(const std::vector<loader::CgroupProcessCounts>& counts,
                                      const std::function<ResolvedCgroup(uint64_t)>& resolve) {
  std::lock_guard lock(mutex_);
  for (const auto& c : counts) {
    auto it = last_.find(c.cgroup_id);
    if (it == last_.end()) {
      const ResolvedCgroup r = resolve(c.cgroup_id);
      if (!r.path) continue;  // not yet named: the kernel keeps the cumulative count meanwhile
      it = last_
               .emplace(c.cgroup_id,
                        std::pair{target_of(r), loader::CgroupProcessCounts{c.cgroup_id}})
               .first;
    }
    auto& [target, last] = it->second;
    auto& t = totals_[target];
    // The kernel's counts only grow; a smaller one means the entry was re-created.
    auto delta = [](uint64_t now, uint64_t before) { return now >= before ? now - before : now; };
    t.forks += delta(c.forks, last.forks);
    t.execs += delta(c.execs, last.execs);
    t.exits += delta(c.exits, last.exits);
    t.exits_signaled += delta(c.exits_signaled, last.exits_signaled);
    last = c;
  }
}

void ProcessLifecycle::observe_processes(const std::vector<ProcessSample>& processes,
                                         uint64_t host_pid_ns, double seconds) {
  std::map<UsageTarget, std::vector<ProcessView>> live;
  std::map<ProcessKey, uint64_t> cpu_now;
  // Pod uid -> pid namespace -> containers with a process in it.
  std::map<std::string, std::map<uint64_t, std::set<std::string>>> pod_namespaces;
  std::map<int32_t, const ProcessSample*> by_pid;
  for (const auto& p : processes) by_pid[p.pid] = &p;

  for (const auto& p : processes) {
    const ProcessKey key{p.pid, p.start_ticks};
    cpu_now[key] = p.cpu_ns;
    if (!p.identity || p.identity->kind != cgroup::CgroupKind::Container) continue;
    const UsageTarget target = target_of_identity(*p.identity);
    ProcessView v;
    v.pid = p.pid;
    v.ppid = p.ppid;
    v.comm = p.comm;
    v.cpu_seconds = double(p.cpu_ns) / 1e9;
    v.rss_bytes = p.rss_bytes;
    v.pid_ns = p.pid_ns;
    v.host_pid_ns = host_pid_ns != 0 && p.pid_ns == host_pid_ns;
    v.container_main = !v.host_pid_ns && p.ns_pid == 1;
    if (auto it = prev_cpu_ns_.find(key);
        it != prev_cpu_ns_.end() && seconds > 0 && p.cpu_ns >= it->second)
      v.cpu_cores = double(p.cpu_ns - it->second) / 1e9 / seconds;
    live[target].push_back(std::move(v));
    if (p.pid_ns && p.pid_ns != host_pid_ns)
      pod_namespaces[target.pod_uid][p.pid_ns].insert(target.container_id);
  }
  for (auto& [target, list] : live) {
    std::sort(list.begin(), list.end(), by_cpu_desc);
    if (list.size() > top_n_) list.resize(top_n_);
  }

  // A runtime helper serves the pod its children's cgroups belong to (a shim is the parent,
  // and subreaper, of the container processes it starts).
  std::map<int32_t, std::map<std::string, int>> child_pods;
  for (const auto& p : processes) {
    auto parent = by_pid.find(p.ppid);
    if (parent == by_pid.end() || parent->second->runtime_process.empty() || !p.identity) continue;
    ++child_pods[p.ppid][p.identity->pod_uid.str()];
  }
  std::map<std::pair<std::string, std::string>, RuntimeUsage> runtime;
  for (const auto& p : processes) {
    if (p.runtime_process.empty()) continue;
    std::string pod;
    // The runtime's own cgroup may say it already (CRI-O conmon scopes).
    if (p.identity) pod = p.identity->pod_uid.str();
    if (auto it = child_pods.find(p.pid); pod.empty() && it != child_pods.end())
      pod =
          std::max_element(it->second.begin(), it->second.end(), [](const auto& a, const auto& b) {
            return a.second < b.second;
          })->first;
    auto& u = runtime[{pod, p.runtime_process}];
    u.cpu_ns += p.cpu_ns;
    u.rss_bytes += p.rss_bytes;
  }

  std::map<std::string, bool> shared;
  for (const auto& [pod, namespaces] : pod_namespaces) {
    bool s = false;
    for (const auto& [ns, containers] : namespaces) s = s || containers.size() > 1;
    shared[pod] = s;
  }

  std::lock_guard lock(mutex_);
  live_ = std::move(live);
  prev_cpu_ns_ = std::move(cpu_now);
  pod_shared_pid_ns_ = std::move(shared);
  runtime_ = std::move(runtime);
}

std::optional<v1::Event> ProcessLifecycle::on_exit(const loader::ProcessExit& x,
                                                   const ResolvedCgroup& where,
                                                   const std::string& node,
                                                   int64_t realtime_minus_monotonic_ns,
                                                   uint64_t host_pid_ns) {
  if (!where.identity) return std::nullopt;  // host processes are counted, not reported one by one
  const UsageTarget target = target_of(where);
  const bool main = x.pid_ns_init && x.pid_ns_inum != host_pid_ns;
  {
    ProcessView v;
    v.pid = int32_t(x.tgid);
    v.ppid = int32_t(x.ppid);
    v.comm = x.comm;
    v.cpu_seconds = double(x.cpu_ns) / 1e9;
    v.exited = true;
    v.exit_code = x.exit_code;
    v.signal = x.signal;
    v.container_main = main;
    v.host_pid_ns = x.ns_level == 0;
    v.pid_ns = x.pid_ns_inum;
    std::lock_guard lock(mutex_);
    if (main)
      main_exit_code_[target] = x.signal ? 128 + x.signal : x.exit_code;  // kubelet's convention
    if (target.kind == UsageTarget::Kind::Container) {
      auto& list = exited_[target];
      list.push_back(std::move(v));
      std::sort(list.begin(), list.end(), by_cpu_desc);
      if (list.size() > top_n_) list.resize(top_n_);
    }
  }

  v1::Event e;
  e.set_type("process_exit");
  e.set_time_unix_nano(realtime_minus_monotonic_ns + int64_t(x.ktime_ns));
  e.set_node(node);
  e.set_pod_uid(where.identity->pod_uid.str());
  e.set_container_id(where.identity->container_id.str());
  if (where.identity->runtime != cgroup::ContainerRuntime::Unknown)
    e.set_runtime(std::string(cgroup::to_string(where.identity->runtime)));
  e.set_qos(std::string(cgroup::to_string(where.identity->qos)));
  e.set_cgroup_id(x.cgroup_id);
  if (where.path) e.set_cgroup(*where.path);
  e.set_pid(int32_t(x.pid));
  e.set_comm(x.comm);
  auto* d = e.mutable_process_exit();
  d->set_exit_code(x.exit_code);
  d->set_signal(x.signal);
  d->set_cpu_seconds(double(x.cpu_ns) / 1e9);
  d->set_is_container_main(main);
  d->set_pid_ns(x.pid_ns_inum);
  d->set_tgid(int32_t(x.tgid));
  d->set_ppid(int32_t(x.ppid));
  d->set_ns_pid(int32_t(x.ns_pid));
  d->set_core_dumped(x.core_dumped);
  if (x.ktime_ns > x.start_ktime_ns)
    d->set_lifetime_seconds(double(x.ktime_ns - x.start_ktime_ns) / 1e9);
  return e;
}

void HeldExits::offer(const loader::ProcessExit& x, const Resolve& resolve,
                      const Publish& publish, Clock::time_point now) {
  if (!waiting_.contains(x.cgroup_id)) {
    const ResolvedCgroup where = resolve(x.cgroup_id);
    if (where.path) {
      publish(x, where);
      return;
    }
  }
  if (held_.size() >= max_held_) {
    ++dropped_;
    return;
  }
  held_.push_back({x, now});
  ++waiting_[x.cgroup_id];
  held_count_ = held_.size();
}

void HeldExits::retry(const Resolve& resolve, const Publish& publish, Clock::time_point now) {
  if (held_.empty()) return;
  // One resolve per waiting cgroup; a miss may rescan (rate-limited by the index).
  std::unordered_map<uint64_t, ResolvedCgroup> where;
  for (const auto& [id, n] : waiting_) where.emplace(id, resolve(id));
  std::deque<Held> still;
  for (auto& h : held_) {
    const ResolvedCgroup& w = where[h.exit.cgroup_id];
    if (w.path) {
      publish(h.exit, w);
    } else if (now - h.since < hold_) {
      still.push_back(std::move(h));
      continue;
    } else {
      ++dropped_;
    }
    if (--waiting_[h.exit.cgroup_id] == 0) waiting_.erase(h.exit.cgroup_id);
  }
  held_ = std::move(still);
  held_count_ = held_.size();
}

void ProcessLifecycle::forget_cgroups(const std::vector<uint64_t>& cgroup_ids) {
  std::lock_guard lock(mutex_);
  for (uint64_t id : cgroup_ids) {
    auto it = last_.find(id);
    if (it == last_.end()) continue;
    const UsageTarget target = it->second.first;
    last_.erase(it);
    const bool still_used = std::any_of(last_.begin(), last_.end(),
                                        [&](const auto& kv) { return kv.second.first == target; });
    if (!still_used) {
      totals_.erase(target);
      main_exit_code_.erase(target);
      exited_.erase(target);
    }
  }
}

void ProcessLifecycle::render(exporters::ExpositionWriter& w, const std::string& node,
                              bool uid) const {
  std::lock_guard lock(mutex_);
  std::vector<Label> labels;
  auto container_labels = [&](const UsageTarget& t) {
    labels.clear();
    labels.push_back({"node", node});
    if (uid) labels.push_back({"pod_uid", t.pod_uid});
    labels.push_back({"container_id", t.container_id});
  };
  w.family("podgauge_container_processes_started_total",
           "Processes (not threads) created in the container, counted in the kernel at fork.",
           MetricType::counter);
  for (const auto& [t, c] : totals_) {
    if (t.kind != UsageTarget::Kind::Container) continue;
    container_labels(t);
    w.sample_integer(labels, c.forks);
  }
  w.family("podgauge_container_process_exits_total",
           "Processes of the container that ended, by reason: exit (exit status) or signal "
           "(killed by a signal).",
           MetricType::counter);
  for (const auto& [t, c] : totals_) {
    if (t.kind != UsageTarget::Kind::Container) continue;
    container_labels(t);
    labels.push_back({"reason", "exit"});
    w.sample_integer(labels, c.exits - c.exits_signaled);
    labels.back() = {"reason", "signal"};
    w.sample_integer(labels, c.exits_signaled);
  }
  w.family("podgauge_container_main_process_exit_code",
           "Exit code of the container's main process (pid 1 of its pid namespace) when it last "
           "ended; 128 + signal number when killed by a signal, as kubelet reports it.",
           MetricType::gauge);
  for (const auto& [t, code] : main_exit_code_) {
    if (t.kind != UsageTarget::Kind::Container) continue;
    container_labels(t);
    w.sample_integer(labels, uint64_t(code));
  }
  w.family("podgauge_pod_shared_pid_namespace",
           "1 when processes of two or more of the pod's containers share one pid namespace "
           "(shareProcessNamespace), else 0.",
           MetricType::gauge);
  for (const auto& [pod, shared] : pod_shared_pid_ns_)
    w.sample({{"node", node}, {"pod_uid", pod}}, shared ? 1 : 0);
  w.family("podgauge_pod_runtime_overhead_cpu_seconds_total",
           "CPU time of the container runtime processes serving the pod (containerd-shim, conmon, "
           "runc, ...), by process.",
           MetricType::counter);
  for (const auto& [key, u] : runtime_)
    if (!key.first.empty())
      w.sample({{"node", node}, {"pod_uid", key.first}, {"process", key.second}},
               double(u.cpu_ns) / 1e9);
  w.family("podgauge_pod_runtime_overhead_memory_bytes",
           "Resident memory of the container runtime processes serving the pod.",
           MetricType::gauge);
  for (const auto& [key, u] : runtime_)
    if (!key.first.empty())
      w.sample_integer({{"node", node}, {"pod_uid", key.first}, {"process", key.second}},
                       u.rss_bytes);
  w.family("podgauge_node_runtime_overhead_cpu_seconds_total",
           "CPU time of container runtime processes serving no pod (dockerd, idle shims).",
           MetricType::counter);
  for (const auto& [key, u] : runtime_)
    if (key.first.empty())
      w.sample({{"node", node}, {"process", key.second}}, double(u.cpu_ns) / 1e9);
  w.family("podgauge_node_runtime_overhead_memory_bytes",
           "Resident memory of container runtime processes serving no pod.", MetricType::gauge);
  for (const auto& [key, u] : runtime_)
    if (key.first.empty()) w.sample_integer({{"node", node}, {"process", key.second}}, u.rss_bytes);
}

nlohmann::json ProcessLifecycle::processes_json() const {
  std::lock_guard lock(mutex_);
  std::set<UsageTarget> targets;
  for (const auto& [t, _] : live_) targets.insert(t);
  for (const auto& [t, _] : exited_) targets.insert(t);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : targets) {
    std::vector<ProcessView> all;
    if (auto it = live_.find(t); it != live_.end()) all = it->second;
    if (auto it = exited_.find(t); it != exited_.end())
      all.insert(all.end(), it->second.begin(), it->second.end());
    std::stable_sort(all.begin(), all.end(), by_cpu_desc);
    if (all.size() > top_n_) all.resize(top_n_);
    nlohmann::json procs = nlohmann::json::array();
    for (const auto& p : all) procs.push_back(to_json(p));
    out.push_back({{"pod_uid", t.pod_uid}, {"container_id", t.container_id}, {"processes", procs}});
  }
  return out;
}

}  // namespace podgauge::agent
