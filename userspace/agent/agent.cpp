#include "podgauge/agent/agent.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <unordered_map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "podgauge/agent/cgroup_resolver.h"
#include "podgauge/agent/preemption_table.h"
#include "podgauge/agent/process_lifecycle.h"
#include "podgauge/agent/process_scan.h"
#include "podgauge/agent/usage_table.h"
#include "podgauge/cgroup/hierarchy.h"
#include "podgauge/exporters/event_log.h"
#include "podgauge/exporters/exposition.h"
#include "podgauge/exporters/http_server.h"
#include "podgauge/loader/kernel_probes.h"
#include "podgauge/loader/process_probes.h"
#include "podgauge/v1/events.pb.h"

#ifndef PODGAUGE_VERSION
#define PODGAUGE_VERSION "0.0.0"
#endif

namespace podgauge::agent {

using exporters::Label;
using exporters::MetricType;

namespace {

constexpr auto kRescanEvery = std::chrono::seconds(10);

std::string default_node_name() {
  if (const char* n = std::getenv("NODE_NAME"); n && *n) return n;
  utsname u{};
  if (uname(&u) == 0) return u.nodename;
  return "unknown";
}

int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct ProcessSelf {
  double cpu_seconds = 0;
  double rss_bytes = 0;
};

ProcessSelf read_process_self() {
  ProcessSelf p;
  std::ifstream stat("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), {});
  // Fields after the comm's closing paren: state is field 3, utime 14, stime 15.
  auto paren = content.rfind(')');
  if (paren != std::string::npos) {
    std::istringstream rest(content.substr(paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    p.cpu_seconds = double(utime + stime) / double(sysconf(_SC_CLK_TCK));
  }
  std::ifstream statm("/proc/self/statm");
  unsigned long long size = 0, resident = 0;
  if (statm >> size >> resident) p.rss_bytes = double(resident) * double(sysconf(_SC_PAGESIZE));
  return p;
}

// Where CFS bandwidth statistics (cpu.stat with nr_throttled) live: the CPU accounting
// hierarchy when it carries the cpu controller, else the v1 cpu hierarchy, whose cgroups
// kubelet lays out with the same relative paths.
const cgroup::CgroupHierarchy* cfs_hierarchy_for(const cgroup::CgroupHierarchies& all,
                                                 const cgroup::CgroupHierarchy& cpu_h) {
  if (cpu_h.has_controller("cpu")) return &cpu_h;
  return all.find_v1("cpu");
}

std::optional<CfsStats> read_cfs_stats(const std::filesystem::path& dir) {
  std::ifstream in(dir / "cpu.stat");
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return parse_cfs_stats(text);
}

loader::CgroupKeying keying_for(const cgroup::CgroupHierarchy& h) {
  if (h.version == cgroup::CgroupVersion::V2) return loader::CgroupKeying::DefaultHierarchy;
  return h.has_controller("cpuacct") ? loader::CgroupKeying::V1Cpuacct : loader::CgroupKeying::V1Cpu;
}

}  // namespace

std::chrono::milliseconds parse_duration(const std::string& text) {
  if (text.empty()) throw std::invalid_argument("empty duration");
  std::chrono::milliseconds total{0};
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
    if (j == i) throw std::invalid_argument("bad duration '" + text + "': expected e.g. 500ms, 1s, 5m, 24h");
    const double value = std::stod(text.substr(i, j - i));
    size_t k = j;
    while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k]))) ++k;
    const std::string unit = text.substr(j, k - j);
    double ms;
    if (unit == "ms") ms = value;
    else if (unit == "s") ms = value * 1e3;
    else if (unit == "m") ms = value * 60e3;
    else if (unit == "h") ms = value * 3600e3;
    else throw std::invalid_argument("bad duration unit '" + unit + "' in '" + text + "': use ms, s, m or h");
    total += std::chrono::milliseconds(static_cast<int64_t>(ms));
    i = k;
  }
  return total;
}

struct Agent::Impl {
  AgentConfig config;
  std::string node;
  cgroup::CgroupHierarchies hierarchies;
  loader::CgroupKeying keying;
  std::unique_ptr<CgroupResolver> cpu_resolver;
  std::unique_ptr<CgroupResolver> memory_resolver;  // null when memory shares the CPU hierarchy
  const cgroup::CgroupHierarchy* cfs_h = nullptr;    // where cpu.stat has throttling; may be null
  std::unique_ptr<loader::KernelProbes> probes;
  // Process lifecycle (issue 3): its own BPF family and per-container process views.
  std::unique_ptr<loader::ProcessProbes> process_probes;
  ProcessLifecycle lifecycle;
  uint64_t host_pid_ns = host_pid_namespace();
  std::chrono::steady_clock::time_point last_process_scan{};
  exporters::EventLog events;
  std::unique_ptr<exporters::AgentHttpServer> server;

  mutable std::mutex table_mutex;
  UsageTable table;
  PreemptionTable preemptions;
  std::atomic<bool> sampled{false};
  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> oom_kills_seen{0};
  std::atomic<int64_t> last_sample_ns{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  explicit Impl(AgentConfig c)
      : config(std::move(c)),
        node(config.node_name.empty() ? default_node_name() : config.node_name),
        hierarchies(cgroup::CgroupHierarchies::discover(config.mountinfo)) {
    const cgroup::CgroupHierarchy* cpu_h = nullptr;
    if (config.cgroup_hierarchy == "auto") {
      cpu_h = hierarchies.cpu_accounting_hierarchy();
    } else if (config.cgroup_hierarchy == "v2") {
      cpu_h = hierarchies.default_hierarchy();
    } else if (config.cgroup_hierarchy == "v1") {
      cpu_h = hierarchies.find_v1("cpuacct");
      if (!cpu_h) cpu_h = hierarchies.find_v1("cpu");
    } else {
      throw std::runtime_error("--cgroup-hierarchy must be auto, v1 or v2, not '" +
                               config.cgroup_hierarchy + "'");
    }
    if (!cpu_h)
      throw std::runtime_error(
          "no cgroup hierarchy to account CPU in (--cgroup-hierarchy " + config.cgroup_hierarchy +
          "): mount cgroup2 at /sys/fs/cgroup, or the v1 cpuacct controller");
    keying = keying_for(*cpu_h);
    cpu_resolver = std::make_unique<CgroupResolver>(*cpu_h);
    cfs_h = cfs_hierarchy_for(hierarchies, *cpu_h);
    const cgroup::CgroupHierarchy* mem_h = hierarchies.memory_hierarchy();
    if (mem_h && mem_h->mount_point != cpu_h->mount_point)
      memory_resolver = std::make_unique<CgroupResolver>(*mem_h);
    cpu_resolver->index().rescan();
    if (memory_resolver) memory_resolver->index().rescan();

    loader::LoaderOptions lo;
    lo.keying = keying;
    lo.enable_bpf_stats = config.bpf_stats;
    lo.force_raw_tracepoints = config.force_raw_tracepoints;
    probes = std::make_unique<loader::KernelProbes>(lo);
    loader::ProcessProbeOptions po;
    po.keying = keying;
    po.force_raw_tracepoints = config.force_raw_tracepoints;
    po.exit_rate_per_sec = config.process_exit_rate;
    po.exit_burst = config.process_exit_burst;
    process_probes = std::make_unique<loader::ProcessProbes>(po);

    exporters::AgentHttpHandlers handlers;
    handlers.metrics = [this] { return render_metrics(); };
    handlers.readiness = [this] {
      return sampled ? exporters::Readiness{true, ""}
                     : exporters::Readiness{false, "no sample taken yet"};
    };
    handlers.summary = [this] { return summary(); };
    server = std::make_unique<exporters::AgentHttpServer>(config.listen, events, handlers);
    server->add_json_route("/v1/containers", [this](const auto&) { return containers_json(); });
    server->add_json_route("/v1/processes", [this](const auto&) { return lifecycle.processes_json(); });
    server->start();
  }

  ~Impl() {
    events.close();
    if (server) server->stop();
  }

  void sample(bool rescan_all) {
    if (rescan_all) {
      cpu_resolver->index().rescan();
      if (memory_resolver) memory_resolver->index().rescan();
    }
    const int64_t t0 = clock_ns(CLOCK_MONOTONIC);
    const auto usage = probes->read_cpu_usage();
    const auto runqueue = probes->read_runqueue_latency();
    const auto pairs = probes->read_preemptions();
    const auto now = Clock::now();
    std::unordered_map<uint64_t, ResolvedCgroup> resolved;
    auto resolve = [&](uint64_t id) -> const ResolvedCgroup& {
      auto it = resolved.find(id);
      if (it == resolved.end()) it = resolved.emplace(id, cpu_resolver->resolve(id)).first;
      return it->second;
    };
    for (const auto& u : usage) resolve(u.cgroup_id);
    for (const auto& p : pairs) resolve(p.victim_cgroup_id), resolve(p.preemptor_cgroup_id);
    std::vector<uint64_t> retired;
    std::vector<std::pair<UsageTarget, std::string>> containers;
    {
      std::lock_guard lock(table_mutex);
      for (const auto& u : usage) table.observe_cpu(u.cgroup_id, u.on_cpu_ns, resolve(u.cgroup_id), now);
      for (const auto& r : runqueue) {
        LatencyHistogram h;
        h.slots = r.slots;
        h.sum_ns = r.sum_ns;
        h.count = r.count;
        table.observe_runqueue(r.cgroup_id, h);
      }
      for (const auto& p : pairs) {
        // Unresolved ids wait for a later round: the kernel counters are cumulative.
        const auto& victim = resolve(p.victim_cgroup_id);
        const auto& preemptor = resolve(p.preemptor_cgroup_id);
        if (!victim.path || !preemptor.path) continue;
        preemptions.observe(p.victim_cgroup_id, p.preemptor_cgroup_id, target_of(victim),
                            target_of(preemptor), p.count);
      }
      preemptions.fold();
      if (rescan_all) {
        retired = table.expire(now);
        preemptions.forget_cgroups(retired);
      }
      std::set<UsageTarget> live;
      for (const auto& t : table.targets()) {
        if (t.target.kind != UsageTarget::Kind::Container) continue;
        live.insert(t.target);
        if (cfs_h && !t.cgroup_path.empty()) containers.emplace_back(t.target, t.cgroup_path);
      }
      if (rescan_all) preemptions.retain_victims(live);
    }
    if (!retired.empty()) probes->forget_cgroups(retired);
    sample_processes(retired);
    // cgroupfs reads outside the lock: /metrics must not wait on them.
    std::vector<std::pair<UsageTarget, CfsStats>> cfs;
    for (const auto& [target, path] : containers)
      if (auto st = read_cfs_stats(cfs_h->absolute_path(path))) cfs.emplace_back(target, *st);
    if (!cfs.empty()) {
      std::lock_guard lock(table_mutex);
      for (const auto& [target, st] : cfs) table.record_cfs(target, st);
    }
    last_sample_ns = clock_ns(CLOCK_MONOTONIC) - t0;
    ++samples;
    sampled = true;
  }

  // Kernel lifecycle counters every round; /proc (top processes, runtime overhead) too, as
  // it reads three small files per process.
  void sample_processes(const std::vector<uint64_t>& retired) {
    lifecycle.observe_counts(process_probes->read_counts(),
                             [&](uint64_t id) { return cpu_resolver->resolve(id); });
    if (!retired.empty()) {
      process_probes->forget_cgroups(retired);
      lifecycle.forget_cgroups(retired);
    }
    const auto now = std::chrono::steady_clock::now();
    const double since = last_process_scan.time_since_epoch().count() == 0
                             ? 0
                             : std::chrono::duration<double>(now - last_process_scan).count();
    last_process_scan = now;
    lifecycle.observe_processes(scan_processes(), host_pid_ns, since);
  }

  void on_process_exit(const loader::ProcessExit& x) {
    const ResolvedCgroup where = cpu_resolver->resolve(x.cgroup_id);
    auto e = lifecycle.on_exit(x, where, node, clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC),
                               host_pid_ns);
    if (e) events.append(std::move(*e));
  }

  void on_oom_kill(const loader::OomKill& k) {
    ResolvedCgroup by_cpu = cpu_resolver->resolve(k.cpu_cgroup_id);
    ResolvedCgroup by_mem = memory_resolver ? memory_resolver->resolve(k.memcg_id) : by_cpu;
    const ResolvedCgroup& who = by_cpu.identity || !by_mem.identity ? by_cpu : by_mem;

    podgauge::v1::Event e;
    e.set_type("oom_kill");
    e.set_time_unix_nano(clock_ns(CLOCK_REALTIME) - (clock_ns(CLOCK_MONOTONIC) - int64_t(k.ktime_ns)));
    e.set_node(node);
    if (who.identity) {
      e.set_pod_uid(who.identity->pod_uid.str());
      e.set_container_id(who.identity->container_id.str());
      if (who.identity->runtime != cgroup::ContainerRuntime::Unknown)
        e.set_runtime(std::string(cgroup::to_string(who.identity->runtime)));
      e.set_qos(std::string(cgroup::to_string(who.identity->qos)));
    }
    e.set_cgroup_id(k.cpu_cgroup_id);
    if (by_mem.path) e.set_cgroup(*by_mem.path);
    else if (by_cpu.path) e.set_cgroup(*by_cpu.path);
    e.set_pid(int32_t(k.pid));
    e.set_comm(k.comm);
    auto* d = e.mutable_oom_kill();
    d->set_tgid(int32_t(k.tgid));
    d->set_memcg_id(k.memcg_id);
    d->set_rss_bytes(k.rss_bytes);
    d->set_oom_score_adj(k.oom_score_adj);
    d->set_memory_limit_bytes(k.memcg_limit_bytes);
    d->set_memory_usage_bytes(k.memcg_usage_bytes);
    events.append(std::move(e));
    {
      std::lock_guard lock(table_mutex);
      table.record_oom_kill(by_cpu.path ? by_cpu : by_mem, Clock::now());
    }
    ++oom_kills_seen;
  }

  std::string render_metrics() const {
    std::vector<TargetUsage> targets;
    std::map<UsageTarget, std::vector<PreemptionSeries>> preemption_series;
    size_t cgroups = 0, unresolved = 0;
    uint64_t unresolved_ns = 0;
    {
      std::lock_guard lock(table_mutex);
      targets = table.targets();
      preemption_series = preemptions.series();
      cgroups = table.cgroup_count();
      unresolved = table.unresolved_count();
      unresolved_ns = table.unresolved_cpu_ns();
    }
    exporters::ExpositionWriter w(64 * 1024 + targets.size() * 512);
    const bool uid = config.pod_uid_label;

    auto container_labels = [&](const TargetUsage& t, std::vector<Label>& l) {
      l.clear();
      l.push_back({"node", node});
      if (uid) l.push_back({"pod_uid", t.target.pod_uid});
      l.push_back({"container_id", t.target.container_id});
    };
    std::vector<Label> labels;
    w.family("podgauge_container_cpu_usage_seconds_total",
             "On-CPU time of the container's tasks, measured at sched_switch.", MetricType::counter);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container) continue;
      container_labels(t, labels);
      w.sample(labels, double(t.cpu_ns) / 1e9);
    }
    w.family("podgauge_container_oom_kills_total",
             "Tasks of the container killed by the kernel OOM killer.", MetricType::counter);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container) continue;
      container_labels(t, labels);
      w.sample_integer(labels, t.oom_kills);
    }
    const auto bounds = loader::runqueue_latency_bounds_seconds();
    w.family("podgauge_container_runqueue_latency_seconds",
             "Time the container's tasks waited in a CPU run queue before each time they ran "
             "(after a wakeup, or after being preempted while runnable), from the kernel's "
             "sched_info.run_delay.",
             MetricType::histogram);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container || t.runqueue.count == 0) continue;
      container_labels(t, labels);
      w.histogram(labels, bounds, t.runqueue.slots, double(t.runqueue.sum_ns) / 1e9);
    }
    auto preemption_labels = [&](const TargetUsage& t, const PreemptionSeries& s) {
      container_labels(t, labels);
      labels.push_back({"by", to_string(s.by)});
      if (s.by != PreemptorKind::Host) labels.push_back({"by_pod_uid", s.by_pod_uid});
    };
    w.family("podgauge_container_preemptions_total",
             "Times a task of the container was switched out while runnable, by where the task "
             "that ran instead belongs: same_container, same_pod, other_pod (by_pod_uid: the top "
             "5 per container, the rest as \"other\") or host.",
             MetricType::counter);
    for (const auto& t : targets) {
      auto it = preemption_series.find(t.target);
      if (it == preemption_series.end()) continue;
      for (const auto& s : it->second) {
        preemption_labels(t, s);
        w.sample_integer(labels, s.count);
      }
    }
    w.family("podgauge_container_cpu_cfs_periods_total",
             "CFS bandwidth enforcement periods in which the container had runnable tasks "
             "(cpu.stat nr_periods; only with a CPU limit).",
             MetricType::counter);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container || !t.cfs) continue;
      container_labels(t, labels);
      w.sample_integer(labels, t.cfs->periods);
    }
    w.family("podgauge_container_cpu_cfs_throttled_periods_total",
             "CFS periods in which the container used up its CPU quota and was throttled.",
             MetricType::counter);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container || !t.cfs) continue;
      container_labels(t, labels);
      w.sample_integer(labels, t.cfs->throttled_periods);
    }
    w.family("podgauge_container_cpu_cfs_throttled_seconds_total",
             "Time the container's CPU quota kept its tasks throttled.", MetricType::counter);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container || !t.cfs) continue;
      container_labels(t, labels);
      w.sample(labels, double(t.cfs->throttled_ns) / 1e9);
    }
    w.family("podgauge_container_info",
             "Container identity read from its cgroup: runtime, QoS class and cgroup path.",
             MetricType::gauge);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container) continue;
      container_labels(t, labels);
      labels.push_back({"runtime", t.runtime});
      labels.push_back({"qos", t.qos});
      labels.push_back({"cgroup", t.cgroup_path});
      w.sample(labels, 1);
    }
    w.family("podgauge_pod_overhead_cpu_usage_seconds_total",
             "On-CPU time in a pod's cgroups outside its containers: component=pod for the pod "
             "cgroup itself, runtime for runtime helpers such as CRI-O conmon.",
             MetricType::counter);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::PodOverhead) continue;
      labels.clear();
      labels.push_back({"node", node});
      labels.push_back({"pod_uid", t.target.pod_uid});
      labels.push_back({"component", t.target.group});
      w.sample(labels, double(t.cpu_ns) / 1e9);
    }
    w.family("podgauge_cgroup_cpu_usage_seconds_total",
             "On-CPU time of tasks outside pods, by top-level cgroup (system.slice, ...).",
             MetricType::counter);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::HostGroup) continue;
      w.sample({{"node", node}, {"cgroup", t.target.group}}, double(t.cpu_ns) / 1e9);
    }

    lifecycle.render(w, node, uid);

    // Self-metrics.
    auto programs = probes->programs();
    for (auto& p : process_probes->programs()) programs.push_back(std::move(p));
    w.family("podgauge_agent_bpf_program_info",
             "BPF programs and how each is attached (tp_btf, raw_tp, not_loaded).", MetricType::gauge);
    for (const auto& p : programs)
      w.sample({{"family", p.family}, {"program", p.name}, {"attach", loader::to_string(p.attach)}}, 1);
    w.family("podgauge_agent_bpf_run_time_seconds_total",
             "Time spent in each BPF program (counted only while kernel BPF stats are enabled, "
             "see --bpf-stats).", MetricType::counter);
    for (const auto& p : programs)
      w.sample({{"family", p.family}, {"program", p.name}}, double(p.run_time_ns) / 1e9);
    w.family("podgauge_agent_bpf_run_count_total",
             "Invocations of each BPF program (counted only while kernel BPF stats are enabled).",
             MetricType::counter);
    for (const auto& p : programs)
      w.sample_integer({{"family", p.family}, {"program", p.name}}, p.run_count);
    auto counters = probes->counters();
    counters.push_back(process_probes->counters());
    w.family("podgauge_agent_bpf_events_total", "Events handled inside BPF, by family.",
             MetricType::counter);
    for (const auto& c : counters) w.sample_integer({{"family", c.family}}, c.events);
    w.family("podgauge_agent_ringbuf_drops_total",
             "Events lost in BPF because the ring buffer was full.", MetricType::counter);
    for (const auto& c : counters) w.sample_integer({{"family", c.family}}, c.ringbuf_drops);
    w.family("podgauge_agent_bpf_map_full_total",
             "Updates lost in BPF because a per-cgroup map was full.", MetricType::counter);
    for (const auto& c : counters) w.sample_integer({{"family", c.family}}, c.map_full);
    w.family("podgauge_agent_bpf_preemptions_dropped_total",
             "Preemptions not counted because the in-kernel pair map was full.", MetricType::counter);
    for (const auto& c : counters)
      if (c.family == "cpu") w.sample_integer({{"family", c.family}}, c.pair_map_full);
    w.family("podgauge_agent_bpf_rate_limited_total",
             "Records held back in BPF by a per-cgroup rate limit (the in-kernel counters still "
             "count every event).", MetricType::counter);
    for (const auto& c : counters)
      if (c.family == "proc") w.sample_integer({{"family", c.family}}, c.rate_limited);
    w.family("podgauge_agent_cgroups", "Cgroups with CPU time the agent tracks, by state.",
             MetricType::gauge);
    w.sample_integer({{"state", "resolved"}}, cgroups);
    w.sample_integer({{"state", "unresolved"}}, unresolved);
    w.family("podgauge_agent_unresolved_cpu_seconds_total",
             "CPU time of cgroups that vanished before the agent could name them.",
             MetricType::counter);
    w.sample({}, double(unresolved_ns) / 1e9);
    w.family("podgauge_agent_samples_total", "Sampling rounds completed.", MetricType::counter);
    w.sample_integer({}, samples.load());
    w.family("podgauge_agent_sample_duration_seconds", "Duration of the last sampling round.",
             MetricType::gauge);
    w.sample({}, double(last_sample_ns.load()) / 1e9);
    w.family("podgauge_agent_events_total", "Events published on /v1/events.", MetricType::counter);
    w.sample_integer({}, events.last_seq());
    w.family("podgauge_agent_build_info", "Agent version and what it detected on this node.",
             MetricType::gauge);
    w.sample({{"version", PODGAUGE_VERSION},
              {"cgroup_mode", cgroup::to_string(hierarchies.mode())},
              {"keying", loader::to_string(keying)}},
             1);
    const ProcessSelf self = read_process_self();
    w.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
             MetricType::counter);
    w.sample({}, self.cpu_seconds);
    w.family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::gauge);
    w.sample({}, self.rss_bytes);
    return w.take();
  }

  nlohmann::json containers_json() const {
    nlohmann::json out = nlohmann::json::array();
    std::lock_guard lock(table_mutex);
    for (const auto& t : table.targets()) {
      if (t.target.kind != UsageTarget::Kind::Container) continue;
      out.push_back({{"pod_uid", t.target.pod_uid},
                     {"container_id", t.target.container_id},
                     {"runtime", t.runtime},
                     {"qos", t.qos},
                     {"cgroup", t.cgroup_path},
                     {"cpu_usage_seconds", double(t.cpu_ns) / 1e9},
                     {"oom_kills", t.oom_kills},
                     {"runqueue_latency_seconds_sum", double(t.runqueue.sum_ns) / 1e9},
                     {"runqueue_latency_count", t.runqueue.count},
                     {"cfs_throttled_periods", t.cfs ? nlohmann::json(t.cfs->throttled_periods) : nlohmann::json()}});
    }
    return out;
  }

  nlohmann::json summary() const {
    nlohmann::json programs = nlohmann::json::array();
    auto all_programs = probes->programs();
    for (auto& p : process_probes->programs()) all_programs.push_back(std::move(p));
    for (const auto& p : all_programs)
      programs.push_back({{"family", p.family}, {"program", p.name},
                          {"attach", loader::to_string(p.attach)}, {"reason", p.reason}});
    auto hierarchy_json = [](const cgroup::CgroupHierarchy* h) -> nlohmann::json {
      if (!h) return nullptr;
      return {{"mount_point", h->mount_point.string()},
              {"version", h->version == cgroup::CgroupVersion::V2 ? 2 : 1},
              {"controllers", h->controllers}};
    };
    size_t containers = 0, pods = 0;
    {
      std::lock_guard lock(table_mutex);
      std::set<std::string> uids;
      for (const auto& t : table.targets()) {
        if (t.target.kind == UsageTarget::Kind::Container) ++containers;
        if (!t.target.pod_uid.empty()) uids.insert(t.target.pod_uid);
      }
      pods = uids.size();
    }
    const auto& f = probes->features();
    return {{"node", node},
            {"version", PODGAUGE_VERSION},
            {"kubernetes", "standalone"},
            {"cgroup_mode", cgroup::to_string(hierarchies.mode())},
            {"cpu_hierarchy", hierarchy_json(hierarchies.cpu_accounting_hierarchy())},
            {"memory_hierarchy", hierarchy_json(hierarchies.memory_hierarchy())},
            {"keying", loader::to_string(keying)},
            {"features", {{"btf", f.btf}, {"tp_btf", f.tp_btf}, {"mark_victim_task", f.mark_victim_task},
                          {"sched_info", f.sched_info}, {"any_context_alloc", f.any_context_alloc}}},
            {"cfs_hierarchy", hierarchy_json(cfs_h)},
            {"programs", programs},
            {"interval_seconds", double(config.interval.count()) / 1e3},
            {"containers", containers},
            {"pods", pods},
            {"events_last_seq", events.last_seq()},
            {"oom_kills", oom_kills_seen.load()},
            {"uptime_seconds",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
  }
};

Agent::Agent(AgentConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Agent::~Agent() = default;

int Agent::bound_port() const { return impl_->server->bound_port(); }
std::string Agent::render_metrics() const { return impl_->render_metrics(); }
nlohmann::json Agent::summary() const { return impl_->summary(); }

std::string Agent::startup_report() const {
  const auto& i = *impl_;
  std::ostringstream o;
  o << "node " << i.node << ", cgroup " << cgroup::to_string(i.hierarchies.mode())
    << ", CPU keyed by " << loader::to_string(i.keying) << " ("
    << i.cpu_resolver->hierarchy().mount_point.string() << ")";
  auto programs = i.probes->programs();
  for (auto& p : i.process_probes->programs()) programs.push_back(std::move(p));
  for (const auto& p : programs) {
    o << ", " << p.name << " via " << loader::to_string(p.attach);
    if (!p.reason.empty()) o << " (" << p.reason << ")";
  }
  o << ", Kubernetes metadata: standalone (pod_uid/container_id from cgroup paths)";
  return o.str();
}

void Agent::run(const std::atomic<bool>& stop) {
  auto& i = *impl_;
  std::thread oom_thread([&] {
    const std::function<void(const loader::OomKill&)> handler = [&](const loader::OomKill& k) {
      i.on_oom_kill(k);
    };
    while (!stop) {
      try {
        i.probes->poll_oom_kills(100, handler);
      } catch (const std::exception& e) {
        fprintf(stderr, "podgauge: %s\n", e.what());
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
  });
  std::thread exit_thread([&] {
    const std::function<void(const loader::ProcessExit&)> handler = [&](const loader::ProcessExit& x) {
      i.on_process_exit(x);
    };
    while (!stop) {
      try {
        i.process_probes->poll_exits(100, handler);
      } catch (const std::exception& e) {
        fprintf(stderr, "podgauge: %s\n", e.what());
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
  });
  auto next = std::chrono::steady_clock::now();
  auto next_rescan = next + kRescanEvery;
  while (!stop) {
    const auto now = std::chrono::steady_clock::now();
    const bool rescan = now >= next_rescan;
    if (rescan) next_rescan = now + kRescanEvery;
    try {
      i.sample(rescan);
    } catch (const std::exception& e) {
      fprintf(stderr, "podgauge: sampling failed: %s\n", e.what());
    }
    next += i.config.interval;
    while (!stop && std::chrono::steady_clock::now() < next)
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          next - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
    if (std::chrono::steady_clock::now() > next + i.config.interval)
      next = std::chrono::steady_clock::now();  // fell behind: don't burst to catch up
  }
  oom_thread.join();
  exit_thread.join();
}

}  // namespace podgauge::agent
