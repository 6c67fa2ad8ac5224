#include "podgauge/agent/agent.h"

#include <httplib.h>

#include <malloc.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "podgauge/agent/cgroup_resolver.h"
#include "podgauge/agent/container_history.h"
#include "podgauge/agent/memory_pressure.h"
#include "podgauge/agent/preemption_table.h"
#include "podgauge/agent/usage_model.h"
#include "podgauge/agent/process_lifecycle.h"
#include "podgauge/agent/process_scan.h"
#include "podgauge/agent/sorted_cursor.h"
#include "podgauge/agent/usage_table.h"
#include "podgauge/analysis/trend.h"
#include "podgauge/cgroup/cpu_limit.h"
#include "podgauge/cgroup/file_reader.h"
#include "podgauge/cgroup/working_set.h"
#include "podgauge/cgroup/hierarchy.h"
#include "podgauge/exporters/event_log.h"
#include "podgauge/exporters/exposition.h"
#include "podgauge/exporters/http_server.h"
#include "podgauge/loader/kernel_probes.h"
#include "podgauge/metadata/event_enricher.h"
#include "podgauge/metadata/kubernetes_metadata.h"
#include "podgauge/loader/memory_probes.h"
#include "podgauge/loader/process_probes.h"
#include "podgauge/v1/events.pb.h"

#ifndef PODGAUGE_VERSION
#define PODGAUGE_VERSION "0.0.0"
#endif

namespace podgauge::agent {

using exporters::Label;
using exporters::MetricType;

namespace {

constexpr auto kRescanEvery = std::chrono::seconds(10);       // without the cgroup_mkdir/rmdir probes
// With them every made cgroup is indexed from its record and every removal (or a record the
// ring could not take) has the trees walked: the timer only catches what no tracepoint tells
// (a renamed cgroup). A walk of a node's trees costs tens of ms.
constexpr auto kRescanSafetyNet = std::chrono::minutes(5);
constexpr auto kRescanMinGap = std::chrono::seconds(1);
// cgroupfs and /proc cost tens of µs a file (more under virtualisation): what changes slowly
// (limits, memory.stat's split, PSI, memory.events, the /proc walk) is read every this many
// rounds, and at once for a container seen for the first time. The BPF maps and the usage
// counters (cpu.stat, memory usage) are read every round.
constexpr uint64_t kSlowEvery = 10;
// How often the sampler and the ring-buffer threads look at the stop flag (a signal handler sets
// it, so nothing can wake them). Each wake-up costs a context switch; 40 a second were ~10% of
// the agent's CPU on an idle node. Process exits are collected at the exit poll's pace (most
// are submitted without a wake-up; a quarter-full ring wakes it at once).
constexpr auto kStopCheck = std::chrono::milliseconds(250);
constexpr int kOomPollMs = 500;   // OOM records wake the poll; the timeout is only for stop
constexpr int kExitPollMs = 250;

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

std::optional<CfsStats> read_cfs_stats(cgroup::FileReader& files, const cgroup::CgroupDir& dir) {
  const auto text = files.read(dir, "cpu.stat");
  return text ? parse_cfs_stats(*text) : std::nullopt;
}

// Whether `dir` is the directory of the cgroup `relative` (hierarchy-relative) in `h`, as
// h.absolute_path builds it: compared in place, so a round that re-reads a container's files
// builds no path.
bool is_dir_of(const cgroup::CgroupDir& dir, const cgroup::CgroupHierarchy& h, std::string_view relative) {
  while (relative.starts_with('/')) relative.remove_prefix(1);
  const std::string& mount = h.mount_point.native();
  const std::string& path = dir.path();
  if (relative.empty()) return path == mount;
  return path.size() == mount.size() + 1 + relative.size() && path[mount.size()] == '/' &&
         path.ends_with(relative) && path.starts_with(mount);
}

// `dir` made the directory of `relative` in `h` if it is not that already.
const cgroup::CgroupDir& dir_of(cgroup::CgroupDir& dir, const cgroup::CgroupHierarchy& h, std::string_view relative) {
  if (!is_dir_of(dir, h, relative)) dir = cgroup::CgroupDir(h.absolute_path(relative));
  return dir;
}

loader::CgroupKeying keying_for(const cgroup::CgroupHierarchy& h) {
  if (h.version == cgroup::CgroupVersion::V2) return loader::CgroupKeying::DefaultHierarchy;
  return h.has_controller("cpuacct") ? loader::CgroupKeying::V1Cpuacct : loader::CgroupKeying::V1Cpu;
}

std::vector<analysis::BreachRule> load_breach_rules(const AgentConfig& config) {
  std::vector<std::string> specs = config.breach_rules;
  if (!config.breach_rules_file.empty()) {
    std::ifstream in(config.breach_rules_file);
    if (!in) throw std::runtime_error("cannot read breach rules file " + config.breach_rules_file);
    std::string line;
    while (std::getline(in, line)) {
      if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
      size_t start = 0;
      while (start < line.size() && std::isspace(static_cast<unsigned char>(line[start]))) ++start;
      if (start < line.size()) specs.push_back(line.substr(start));
    }
  }
  if (specs.empty()) return analysis::default_breach_rules();
  std::vector<analysis::BreachRule> rules;
  for (const auto& spec : specs) {
    try {
      rules.push_back(analysis::parse_breach_rule(spec));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
  }
  return rules;
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
  const cgroup::CgroupHierarchy* mem_h = nullptr;    // where memory.* files are; may be null
  std::unique_ptr<loader::KernelProbes> probes;
  // Process lifecycle (issue 3): its own BPF family and per-container process views.
  std::unique_ptr<loader::ProcessProbes> process_probes;
  ProcessLifecycle lifecycle;
  uint64_t host_pid_ns = host_pid_namespace();
  std::chrono::steady_clock::time_point last_process_scan{};
  exporters::EventLog events;
  std::unique_ptr<exporters::AgentHttpServer> server;
  // Kubernetes join. Declared in this order so the informer (which notifies the enricher)
  // is destroyed first.
  std::unique_ptr<metadata::EventEnricher> enricher;
  std::unique_ptr<metadata::KubernetesMetadata> kube;

  mutable std::mutex table_mutex;
  UsageTable table;
  PreemptionTable preemptions;
  UsageModel model;  // under table_mutex
  std::unique_ptr<ContainerHistory> history;
  std::vector<std::string> history_problems;  // from the restore at start
  std::chrono::steady_clock::time_point last_checkpoint = std::chrono::steady_clock::now();
  std::string checkpoint_error;
  std::atomic<uint64_t> checkpoints{0};
  std::atomic<bool> sampled{false};
  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> rescans{0};  // walks of the cgroup trees
  std::atomic<uint64_t> cgroups_made{0};  // distinct paths of cgroup_mkdir records taken
  std::atomic<uint64_t> files_open{0};
  std::atomic<uint64_t> oom_kills_seen{0};
  std::atomic<int64_t> last_sample_ns{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  explicit Impl(AgentConfig c)
      : config(std::move(c)),
        node(config.node_name.empty() ? default_node_name() : config.node_name),
        hierarchies(cgroup::CgroupHierarchies::discover(config.mountinfo)) {
    // Loading BPF takes seconds (minutes under emulation): a taken port is said at once.
    exporters::check_listen_address(config.listen);
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
    mem_h = hierarchies.memory_hierarchy();
    if (mem_h && mem_h->mount_point != cpu_h->mount_point)
      memory_resolver = std::make_unique<CgroupResolver>(*mem_h);
    cpu_resolver->index().rescan();
    if (memory_resolver) memory_resolver->index().rescan();

    model = UsageModel(load_breach_rules(config));
    history = std::make_unique<ContainerHistory>(config.history);
    if (!config.state_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(config.state_dir, ec);
      if (ec)
        throw std::runtime_error("cannot create --state-dir " + config.state_dir + ": " + ec.message());
    }

    // Before loading BPF: a wrong --kubeconfig/--context fails fast.
    metadata::KubernetesMetadataOptions ko;
    ko.disabled = config.no_kube;
    ko.kubeconfig = config.kubeconfig;
    ko.context = config.context;
    ko.node_name = node;
    ko.on_change = [this] {
      if (enricher) enricher->notify();
    };
    kube = std::make_unique<metadata::KubernetesMetadata>(std::move(ko));

    loader::LoaderOptions lo;
    lo.keying = keying;
    lo.enable_bpf_stats = config.bpf_stats;
    lo.force_raw_tracepoints = config.force_raw_tracepoints;
    if (config.oom_attach == "tp_btf") lo.oom_attach = loader::AttachKind::TpBtf;
    if (config.oom_attach == "raw_tp") lo.oom_attach = loader::AttachKind::RawTracepoint;
    if (config.oom_attach == "fentry") lo.oom_attach = loader::AttachKind::Fentry;
    if (config.oom_attach == "kprobe") lo.oom_attach = loader::AttachKind::Kprobe;
    probes = std::make_unique<loader::KernelProbes>(lo);
    setup_memory_pressure(*cpu_h, mem_h);
    loader::ProcessProbeOptions po;
    po.keying = keying;
    po.force_raw_tracepoints = config.force_raw_tracepoints;
    po.exit_rate_per_sec = config.process_exit_rate;
    po.exit_burst = config.process_exit_burst;
    process_probes = std::make_unique<loader::ProcessProbes>(po);
    // The history is restored after the BPF objects are loaded, and what loading them took
    // (libbpf parses the kernel's BTF, several MiB, for CO-RE) is handed back first: the two
    // would otherwise add up to the agent's peak RSS (64.4 MiB at 500 containers, 24 h).
    ::malloc_trim(0);
    if (!config.state_dir.empty()) {
      history_problems = history->restore(config.state_dir);
      for (const auto& p : history_problems)
        fprintf(stderr, "podgauge agent: history: %s\n", p.c_str());
    }

    enricher = std::make_unique<metadata::EventEnricher>(
        kube->enabled() ? &kube->cache() : nullptr, config.metadata_wait,
        [this](podgauge::v1::Event e) {
          write_kubernetes_event(e);
          events.append(std::move(e));
        });
    kube->start();

    exporters::AgentHttpHandlers handlers;
    handlers.metrics = [this] { return render_metrics(); };
    handlers.readiness = [this] {
      return sampled ? exporters::Readiness{true, ""}
                     : exporters::Readiness{false, "no sample taken yet"};
    };
    handlers.summary = [this] { return summary(); };
    server = std::make_unique<exporters::AgentHttpServer>(config.listen, events, handlers);
    server->add_json_route("/v1/containers", [this](const auto&) { return containers_json(); });
    server->add_json_route("/v1/breaches", [this](const httplib::Request& req) {
      if (!req.has_param("threshold") && !req.has_param("window")) return breaches_json();
      if (!req.has_param("threshold") || !req.has_param("window"))
        throw std::invalid_argument("threshold and window go together, e.g. ?threshold=90&window=5m");
      double threshold = 0;
      try {
        threshold = std::stod(req.get_param_value("threshold"));
      } catch (const std::exception&) {
        throw std::invalid_argument("threshold must be a percent such as 90");
      }
      return window_breaches_json(threshold, parse_duration(req.get_param_value("window")),
                                  req.has_param("resource") ? req.get_param_value("resource") : "memory");
    });
    server->add_json_route("/v1/history", [this](const httplib::Request& req) { return history_json(req); });
    server->add_json_route("/v1/efficiency", [this](const httplib::Request& req) {
      return efficiency_json(parse_duration(req.has_param("window") ? req.get_param_value("window") : "1h"));
    });
    server->add_json_route("/v1/processes", [this](const auto&) {
      nlohmann::json out = lifecycle.processes_json();
      for (auto& c : out) {
        UsageTarget t;
        t.kind = UsageTarget::Kind::Container;
        t.pod_uid = c.value("pod_uid", "");
        t.container_id = c.value("container_id", "");
        const metadata::ResolvedNames n = names_of(t);
        c["namespace"] = n.namespace_;
        c["pod"] = n.pod;
        c["container"] = n.container;
      }
      return out;
    });
    server->start();
  }

  ~Impl() {
    events.close();
    if (server) server->stop();  // first: its handlers read kube and enricher
    if (kube) kube->flush_events(std::chrono::seconds(2));  // OOMKilled Events still queued
    kube.reset();
    enricher.reset();  // publishes what it still holds into the log (kept in memory)
  }

  bool slow_round = true;  // sampling thread only
  cgroup::FileReader files;  // sampling thread only: cgroupfs files kept open between rounds
  // The slow part of each container's reading, and its directories in the cpu.stat and memory
  // trees as the file reader knows them.
  struct SlowEntry {
    ContainerReading reading;
    cgroup::CgroupDir cfs_dir, mem_dir;
  };
  std::map<UsageTarget, SlowEntry> slow_cache;
  std::set<UsageTarget> pressure_read;                 // containers whose pressure files were read
  // The live containers, rebuilt only when they change (live_gen counts the changes): the
  // per-round checks against it are skipped while it and the container dirs stay the same.
  std::set<UsageTarget> live_now;
  uint64_t live_gen = 0, paths_gen = 0;
  uint64_t walked_gen = ~0ull;                            // live_gen at the last walk of the trees
  std::pair<uint64_t, uint64_t> pressure_gen{~0ull, 0};  // {live_gen, paths_gen} when all were read

  // Reused every round: assigning over last round's elements keeps their strings' buffers.
  std::vector<UsageTable::ContainerCpu> round_containers;
  std::vector<ContainerReading> round_readings;

  std::vector<std::string> made_paths;  // cgroups the kernel made since the last round
  uint64_t dirs_fed = 0, dirs_fed_seen = 0;  // adds to the memory/PSI trees' indexes

  // Indexes `made_paths`, the cgroups the kernel made since the last round, each on its own (one open and
  // fstat a path component), so a new pod or container is named within a round without a walk
  // of the trees. Returns the CPU tree's new ids. The kernel names a cgroup from its hierarchy's
  // root: an agent that sees a sub-tree (mount_root) drops that prefix, and paths outside it or
  // of other hierarchies name no directory here.
  std::vector<uint64_t> index_made_cgroups() {
    std::vector<uint64_t> ids;
    for (const auto& path : made_paths) {
      for (CgroupResolver* r : {cpu_resolver.get(), memory_resolver.get(), psi_resolver.get()}) {
        if (!r) continue;
        auto relative = mount_relative(path, r->hierarchy().mount_root);
        if (!relative) continue;
        bool added = false;
        const auto id = r->index().add(*relative, &added);
        if (!id || !added) continue;  // not here, or known already
        ++dirs_fed;
        if (r == cpu_resolver.get()) ids.push_back(*id);
      }
    }
    return ids;
  }

  // `path` from the hierarchy's root as seen below a mount of `mount_root`; nullopt outside it.
  static std::optional<std::string_view> mount_relative(std::string_view path, std::string_view mount_root) {
    if (mount_root.empty() || mount_root == "/") return path;
    if (!path.starts_with(mount_root)) return std::nullopt;
    path.remove_prefix(mount_root.size());
    if (path.empty()) return std::string_view("/");
    if (path.front() != '/') return std::nullopt;  // "/kubepods2" is not below "/kubepods"
    return path;
  }

  void sample(bool rescan_all) {
    slow_round = samples % kSlowEvery == 0;
    // Taken before a walk, which then sees each of them: one made after it waits for the next round.
    made_paths.clear();
    probes->take_cgroups_made(made_paths);
    {
      // On v1 every hierarchy makes its own copy of a pod's cgroup: one path, a record each.
      // (Copies, not views: erase_if moves the strings it keeps.)
      std::unordered_set<std::string> seen;
      std::erase_if(made_paths, [&](const std::string& path) { return !seen.insert(path).second; });
    }
    cgroups_made += made_paths.size();
    if (rescan_all) {
      files.sweep();  // closes the files of containers that are gone
      files_open = files.open_files();
      cpu_resolver->index().rescan();
      if (memory_resolver) memory_resolver->index().rescan();
    }
    const std::vector<uint64_t> made = rescan_all ? std::vector<uint64_t>{} : index_made_cgroups();
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
    // Every pod and container cgroup that exists, also those whose tasks have not run since the
    // probes loaded (a sleeping pod is still a pod): enumerated from the index on each rescan.
    std::vector<uint64_t> enumerated;
    if (rescan_all || samples == 0) {
      for (const auto& [id, entry] : cpu_resolver->index().snapshot())
        if (!entry.removed && resolve(id).identity) enumerated.push_back(id);
    } else {
      for (const auto id : made)
        if (resolve(id).identity) enumerated.push_back(id);
    }
    for (const auto& p : pairs) resolve(p.victim_cgroup_id), resolve(p.preemptor_cgroup_id);
    std::vector<uint64_t> retired;
    auto& containers = round_containers;  // with a cgroup path
    const std::set<UsageTarget>& live_containers = live_now;
    {
      std::lock_guard lock(table_mutex);
      for (const auto id : enumerated) table.observe_cpu(id, 0, resolve(id), now);  // max: never steps back
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
      table.containers(containers);
      const auto& listed = containers;
      bool same = listed.size() == live_now.size();
      for (auto [a, b] = std::pair{listed.begin(), live_now.begin()}; same && a != listed.end(); ++a, ++b)
        same = a->target == *b;
      if (!same) {
        live_now.clear();
        for (const auto& t : listed) live_now.insert(live_now.end(), t.target);
        ++live_gen;
      }
      std::erase_if(containers, [](const auto& c) { return c.cgroup_path.empty(); });
      if (rescan_all) {
        const auto& live = live_now;
        preemptions.retain_victims(live);
        model.retain(live);
        std::erase_if(slow_cache, [&](const auto& kv) { return !live.count(kv.first); });
        std::erase_if(pressure_read, [&](const auto& t) { return !live.count(t); });
      }
    }
    if (!retired.empty()) probes->forget_cgroups(retired);
    sample_processes(retired);
    // cgroupfs reads outside the lock: /metrics must not wait on them.
    refresh_container_dirs(rescan_all, live_containers);
    auto& readings = round_readings;
    readings.resize(containers.size());
    // The containers come in target order, as these maps are sorted.
    SortedCursor slow_at(slow_cache);
    SortedCursor mem_at(mem_paths);
    for (size_t i = 0; i < containers.size(); ++i) {
      const auto& c = containers[i];
      ContainerReading& r = fresh_reading(readings[i], c.target);
      r.cpu_ns = c.cpu_ns;
      if (kube->enabled())
        if (const auto pod = kube->cache().pod(c.target.pod_uid))
          if (const metadata::ContainerMetadata* spec = pod->container_by_id(c.target.container_id)) {
            if (const k8s::Quantity* q = spec->resources.requests.find("cpu")) r.cpu_request_cores = q->as_double();
            if (const k8s::Quantity* q = spec->resources.requests.find("memory"))
              r.memory_request_bytes = q->as_double();
          }
      try {
        auto cached = slow_at.find(c.target);
        const bool full = slow_round || cached == slow_cache.end();
        const ContainerReading* last = cached != slow_cache.end() ? &cached->second.reading : nullptr;
        SlowEntry fresh;  // a new container's directories, kept when its reading is
        SlowEntry& entry = last ? cached->second : fresh;
        // Every round only what can breach: throttling needs a CPU limit, the working set's
        // trend matters against a memory limit; the rest at the slow cadence.
        const bool cpu_limited = last && last->cpu_limit_cores;
        const bool memory_limited = last && last->memory && last->memory->limit;
        if (cfs_h && !full && !cpu_limited) {
          r.cfs = last->cfs;
          r.cfs_read = false;
          r.cpu_limit_cores = last->cpu_limit_cores;
        } else if (cfs_h) {
          const cgroup::CgroupDir& cfs_dir = dir_of(entry.cfs_dir, *cfs_h, c.cgroup_path);
          r.cfs = read_cfs_stats(files, cfs_dir);
          if (full)
            r.cpu_limit_cores =
                cgroup::read_cpu_limit_cores(files, cfs_dir, cfs_h->version == cgroup::CgroupVersion::V2);
          else
            r.cpu_limit_cores = last->cpu_limit_cores;
        }
        if (mem_h)
          if (const cgroup::CgroupDir* mem_dir = memory_dir_of(c.target, c.cgroup_path, mem_at, entry)) {
            const bool v2 = mem_h->version == cgroup::CgroupVersion::V2;
            if (full) {
              r.memory = cgroup::read_memory_usage(files, *mem_dir, v2);
            } else if (last->memory && !memory_limited) {
              r.memory = last->memory;
              r.usage_read = r.memory_read = false;
            } else if (last->memory) {
              // Between full reads: fresh usage, the rest of memory.stat from the last one.
              r.memory = last->memory;
              r.memory_read = false;
              if (auto usage = cgroup::read_memory_usage_bytes(files, *mem_dir, v2)) {
                r.memory->usage = *usage;
                r.memory->working_set = *usage > r.memory->inactive_file ? *usage - r.memory->inactive_file : 0;
              } else {
                r.usage_read = false;
              }
            }
          }
        if (full && last) {
          cached->second.reading = r;
        } else if (full) {
          fresh.reading = r;
          slow_cache.emplace(c.target, std::move(fresh));
        }
      } catch (const std::exception& e) {
        report_read_error(e.what());
      }
    }
    std::vector<analysis::BreachEvent> breaches;
    {
      std::lock_guard lock(table_mutex);
      for (const auto& r : readings)
        if (r.cfs && r.cfs_read) table.record_cfs(r.target, *r.cfs);  // a carried copy changes nothing
      breaches = model.update(readings, analysis::Nanos(clock_ns(CLOCK_MONOTONIC)));
    }
    for (const auto& b : breaches) publish_breach(b);
    // History at the scheduled tick (wall clock, rounded to the interval): steady timestamps
    // compress to nothing, and a restarted agent continues the same series.
    const int64_t step = std::max<int64_t>(config.interval.count(), 1);
    const int64_t t_ms = (clock_ns(CLOCK_REALTIME) / 1'000'000 + step / 2) / step * step;
    for (size_t i = 0; i < readings.size(); ++i) history->record(readings[i], containers[i].oom_kills, t_ms);
    maybe_checkpoint(false);
    sample_memory_pressure(rescan_all, live_containers);
    last_sample_ns = clock_ns(CLOCK_MONOTONIC) - t0;
    ++samples;
    sampled = true;
  }

  // Each container's own cgroup in the memory hierarchy: from the memory tree's walk when that
  // is not the CPU one (v1 hierarchies may place the same pod at different depths: kubelet itself
  // never does, but a node's own cgroups can differ per hierarchy), else the CPU path's, kept in
  // the container's `entry`. Sampling thread only.
  const cgroup::CgroupDir* memory_dir_of(const UsageTarget& t, const std::string& cpu_path,
                                         SortedCursor<std::map<UsageTarget, cgroup::CgroupDir>>& mem_at,
                                         SlowEntry& entry) const {
    if (!memory_resolver) return &dir_of(entry.mem_dir, *mem_h, cpu_path);
    auto it = mem_at.find(t);
    if (it == mem_at.end()) return nullptr;
    return &it->second;
  }

  // Every minute, and when stopping: history survives restarts.
  void maybe_checkpoint(bool now) {
    if (config.state_dir.empty()) return;
    const auto t = std::chrono::steady_clock::now();
    if (!now && t - last_checkpoint < std::chrono::minutes(1)) return;
    last_checkpoint = t;
    try {
      history->checkpoint(config.state_dir, clock_ns(CLOCK_REALTIME) / 1'000'000);
      ++checkpoints;
      checkpoint_error.clear();
    } catch (const std::exception& e) {
      if (checkpoint_error != e.what()) fprintf(stderr, "podgauge agent: history: %s\n", e.what());
      checkpoint_error = e.what();
    }
  }

  nlohmann::json history_json(const httplib::Request& req) const {
    auto param = [&](const char* k, const char* def) {
      return req.has_param(k) ? req.get_param_value(k) : std::string(def);
    };
    const auto metric = history_metric(param("metric", "working_set_bytes"));
    if (!metric) throw std::invalid_argument("unknown metric '" + param("metric", "") + "'");
    const auto agg = history_aggregation(param("agg", "avg"));
    if (!agg) throw std::invalid_argument("agg must be avg, min, max, last, rate or pNN (e.g. p95)");
    const auto window = parse_duration(param("window", "5m"));
    const int64_t end = clock_ns(CLOCK_REALTIME) / 1'000'000;
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : history->query(*metric, {end - window.count(), end}, agg->first, agg->second,
                                        param("container_id", ""))) {
      UsageTarget t;
      t.kind = UsageTarget::Kind::Container;
      t.pod_uid = p.target.pod_uid;
      t.container_id = p.target.container_id;
      const auto n = names_of(t);
      out.push_back({{"namespace", n.namespace_}, {"pod", n.pod}, {"container", n.container},
                     {"pod_uid", t.pod_uid}, {"container_id", t.container_id},
                     {"metric", to_string(*metric)}, {"value", p.result.value}, {"samples", p.result.samples},
                     {"tier", p.result.tier == store::Tier::kRaw ? "raw" : "10s"}});
    }
    return out;
  }

  // Whether the container's pod spec is in the cache (requests are known, possibly unset).
  bool pod_spec_known(const UsageTarget& t) const {
    if (!kube->enabled()) return false;
    const auto pod = kube->cache().pod(t.pod_uid);
    return pod && pod->container_by_id(t.container_id) != nullptr;
  }

  // Usage against requests and limits over a window (/v1/efficiency): average and p95 from the
  // history, requests from the pod spec, limits as the kernel enforces them, and what is unset.
  nlohmann::json efficiency_json(std::chrono::milliseconds window) const {
    const int64_t end = clock_ns(CLOCK_REALTIME) / 1'000'000;
    const store::Window w{end - window.count(), end};
    struct Row {
      std::optional<double> cpu_avg, cpu_p95, mem_avg, mem_p95, mem_max, cpu_limit, mem_limit;
      uint64_t samples = 0;
    };
    std::map<std::pair<std::string, std::string>, Row> rows;  // (pod_uid, container_id)
    auto fill = [&](HistoryMetric metric, store::Agg agg, double q, std::optional<double> Row::*field) {
      for (const auto& p : history->query(metric, w, agg, q)) {
        Row& r = rows[{p.target.pod_uid, p.target.container_id}];
        r.*field = p.result.value;
        if (metric == HistoryMetric::WorkingSetBytes) r.samples = std::max(r.samples, p.result.samples);
      }
    };
    fill(HistoryMetric::CpuSeconds, store::Agg::kRate, 0, &Row::cpu_avg);
    fill(HistoryMetric::CpuSeconds, store::Agg::kPercentile, 0.95, &Row::cpu_p95);
    fill(HistoryMetric::WorkingSetBytes, store::Agg::kAvg, 0, &Row::mem_avg);
    fill(HistoryMetric::WorkingSetBytes, store::Agg::kPercentile, 0.95, &Row::mem_p95);
    fill(HistoryMetric::WorkingSetBytes, store::Agg::kMax, 0, &Row::mem_max);
    fill(HistoryMetric::CpuLimitCores, store::Agg::kLast, 0, &Row::cpu_limit);
    fill(HistoryMetric::MemoryLimitBytes, store::Agg::kLast, 0, &Row::mem_limit);
    auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
    auto percent = [](const std::optional<double>& used, const std::optional<double>& of) {
      return used && of && *of > 0 ? nlohmann::json(100.0 * *used / *of) : nlohmann::json();
    };
    nlohmann::json out = nlohmann::json::array();
    std::lock_guard lock(table_mutex);
    for (const auto& [key, r] : rows) {
      UsageTarget t;
      t.kind = UsageTarget::Kind::Container;
      t.pod_uid = key.first;
      t.container_id = key.second;
      const ContainerModel* m = model.find(t);
      const std::optional<double> none;
      const std::optional<double>& cpu_req = m ? m->cpu_request_cores : none;
      const std::optional<double>& mem_req = m ? m->memory_request_bytes : none;
      const bool spec = pod_spec_known(t);
      nlohmann::json unset = nlohmann::json::array();
      if (!r.cpu_limit) unset.push_back("cpu_limit");
      if (!r.mem_limit) unset.push_back("memory_limit");
      if (spec && !cpu_req) unset.push_back("cpu_request");
      if (spec && !mem_req) unset.push_back("memory_request");
      const auto n = names_of(t);
      out.push_back(
          {{"namespace", n.namespace_}, {"pod", n.pod}, {"container", n.container}, {"pod_uid", t.pod_uid},
           {"container_id", t.container_id}, {"samples", r.samples}, {"spec_known", spec}, {"unset", unset},
           {"cpu",
            {{"avg_cores", opt(r.cpu_avg)}, {"p95_cores", opt(r.cpu_p95)}, {"request_cores", opt(cpu_req)},
             {"limit_cores", opt(r.cpu_limit)}, {"avg_of_request_percent", percent(r.cpu_avg, cpu_req)},
             {"p95_of_request_percent", percent(r.cpu_p95, cpu_req)},
             {"avg_of_limit_percent", percent(r.cpu_avg, r.cpu_limit)},
             {"p95_of_limit_percent", percent(r.cpu_p95, r.cpu_limit)}}},
           {"memory",
            {{"avg_working_set_bytes", opt(r.mem_avg)}, {"p95_working_set_bytes", opt(r.mem_p95)},
             {"max_working_set_bytes", opt(r.mem_max)}, {"request_bytes", opt(mem_req)},
             {"limit_bytes", opt(r.mem_limit)}, {"avg_of_request_percent", percent(r.mem_avg, mem_req)},
             {"p95_of_request_percent", percent(r.mem_p95, mem_req)},
             {"avg_of_limit_percent", percent(r.mem_avg, r.mem_limit)},
             {"p95_of_limit_percent", percent(r.mem_p95, r.mem_limit)}}}});
    }
    return out;
  }

  // Containers whose usage stayed at or above `threshold` % of their limit for the whole window
  // (podgauge breaches --threshold --window): the window's minimum against the limit.
  nlohmann::json window_breaches_json(double threshold, std::chrono::milliseconds window,
                                      const std::string& resource) const {
    const int64_t end = clock_ns(CLOCK_REALTIME) / 1'000'000;
    const store::Window w{end - window.count(), end};
    const bool memory = resource == "memory";
    if (!memory && resource != "cpu") throw std::invalid_argument("resource must be memory or cpu");
    const auto usage_metric = memory ? HistoryMetric::WorkingSetBytes : HistoryMetric::CpuSeconds;
    const auto limit_metric = memory ? HistoryMetric::MemoryLimitBytes : HistoryMetric::CpuLimitCores;
    std::map<std::string, double> limits;
    for (const auto& p : history->query(limit_metric, w, store::Agg::kLast, 0)) limits[p.target.container_id] = p.result.value;
    std::map<std::string, std::pair<double, double>> avg_max;
    for (const auto& p : history->query(usage_metric, w, store::Agg::kAvg, 0)) avg_max[p.target.container_id].first = p.result.value;
    for (const auto& p : history->query(usage_metric, w, store::Agg::kMax, 0)) avg_max[p.target.container_id].second = p.result.value;
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : history->query(usage_metric, w, store::Agg::kMin, 0)) {
      auto l = limits.find(p.target.container_id);
      if (l == limits.end() || l->second <= 0 || p.result.samples < 2) continue;
      // The window must be covered: its first sample near its start.
      const double low = 100.0 * p.result.value / l->second;
      if (low < threshold) continue;
      UsageTarget t;
      t.kind = UsageTarget::Kind::Container;
      t.pod_uid = p.target.pod_uid;
      t.container_id = p.target.container_id;
      const auto n = names_of(t);
      const auto& am = avg_max[p.target.container_id];
      out.push_back({{"namespace", n.namespace_}, {"pod", n.pod}, {"container", n.container},
                     {"pod_uid", t.pod_uid}, {"container_id", t.container_id},
                     {"rule", resource + ".limit>=" + nlohmann::json(threshold).dump() + "% over the window"},
                     {"resource", resource + ".limit"}, {"value", 100.0 * am.first / l->second},
                     {"peak", 100.0 * am.second / l->second}, {"threshold", threshold},
                     {"duration_seconds", double(window.count()) / 1e3}});
    }
    return out;
  }

  // cgroupfs read failures (malformed files) are reported once a minute, not per round.
  std::chrono::steady_clock::time_point last_read_error{};
  std::atomic<uint64_t> read_errors{0};
  void report_read_error(const std::string& what) {
    ++read_errors;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_read_error < std::chrono::minutes(1)) return;
    last_read_error = now;
    fprintf(stderr, "podgauge: %s (further read errors this minute are only counted)\n", what.c_str());
  }

  void publish_breach(const analysis::BreachEvent& b) {
    const auto slash = b.target.find('/');
    podgauge::v1::Event e;
    const bool start = b.phase == analysis::BreachEvent::Phase::Start;
    e.set_type(start ? "breach_start" : "breach_end");
    const int64_t mono = clock_ns(CLOCK_MONOTONIC), real = clock_ns(CLOCK_REALTIME);
    e.set_time_unix_nano(real - (mono - b.time.count()));
    e.set_node(node);
    e.set_pod_uid(b.target.substr(0, slash));
    e.set_container_id(slash == std::string::npos ? "" : b.target.substr(slash + 1));
    auto* d = start ? e.mutable_breach_start() : e.mutable_breach_end();
    d->set_rule(b.rule);
    d->set_resource(std::string(analysis::to_string(b.kind)));
    d->set_value(b.value);
    d->set_threshold(b.threshold);
    d->set_peak(b.peak);
    d->set_since_unix_nano(real - (mono - b.since.count()));
    if (!start) d->set_duration_seconds(double((b.time - b.since).count()) / 1e9);
    enricher->submit(std::move(e));
  }

  // Kernel lifecycle counters every round; /proc (top processes, runtime overhead) too, as
  // it reads three small files per process.
  ProcessScanner process_scanner;  // sampling thread only
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
    if (!slow_round && last_process_scan.time_since_epoch().count() != 0) return;
    last_process_scan = now;
    CgroupMoves moves;  // only processes the kernel moved have their cgroup file re-read
    if (auto m = probes->take_cgroup_moves()) moves = {true, std::move(*m)};
    lifecycle.observe_processes(process_scanner.scan(moves), host_pid_ns, since);
  }

  // Exits of a cgroup no walk has seen yet wait for it (exit thread only).
  HeldExits held_exits;
  const HeldExits::Resolve resolve_cpu = [this](uint64_t id) { return cpu_resolver->resolve(id); };
  const HeldExits::Publish publish_exit = [this](const loader::ProcessExit& x,
                                                 const ResolvedCgroup& where) {
    auto e = lifecycle.on_exit(x, where, node, clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC),
                               host_pid_ns);
    if (e) enricher->submit(std::move(*e));
  };
  void on_process_exit(const loader::ProcessExit& x) {
    held_exits.offer(x, resolve_cpu, publish_exit, std::chrono::steady_clock::now());
  }
  void retry_held_exits() {
    held_exits.retry(resolve_cpu, publish_exit, std::chrono::steady_clock::now());
  }

  // An OOM kill the agent attributed to a named pod becomes an Event on that pod, as the
  // kubelet's own OOMKilled status is easy to miss once the container restarted.
  void write_kubernetes_event(const podgauge::v1::Event& e) {
    if (!kube || e.type() != "oom_kill" || e.pod().empty() || e.namespace_().empty()) return;
    const auto& d = e.oom_kill();
    auto mib = [](uint64_t b) { return std::to_string((b + (1 << 19)) >> 20) + "Mi"; };
    k8s::EventRecord r;
    r.regarding.namespace_ = e.namespace_();
    r.regarding.name = e.pod();
    r.regarding.uid = e.pod_uid();
    if (!e.container().empty()) r.regarding.field_path = "spec.containers{" + e.container() + "}";
    r.reason = "OOMKilled";
    r.action = "Killing";
    r.series_key = e.container();
    std::string note = "Container " + (e.container().empty() ? e.container_id().substr(0, 12) : e.container()) +
                       ": the kernel OOM killer killed " + e.comm() + " (pid " + std::to_string(d.tgid()) +
                       ", rss " + mib(d.rss_bytes()) + ")";
    if (d.oom_constraint() == "global") {
      note += "; the node ran out of memory (container limit " +
              (d.memory_limit_bytes() ? mib(d.memory_limit_bytes()) : std::string("none")) + ")";
    } else {
      note += " at its memory limit " + mib(d.memory_limit_bytes()) + " (usage " + mib(d.memory_usage_bytes()) + ")";
    }
    if (d.working_set_peak_bytes())
      note += "; working set peak in the last 60s " + mib(d.working_set_peak_bytes());
    r.note = note;
    kube->record_event(std::move(r));
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
    // A cgroup OOM happens when a charge fails at the cgroup's limit, so usage sits at the
    // limit; a victim picked while its cgroup is below its limit was chosen by a global OOM.
    const uint64_t slack = std::max<uint64_t>(k.memcg_limit_bytes / 50, 256 << 10);
    d->set_oom_constraint(k.memcg_limit_bytes && k.memcg_usage_bytes + slack >= k.memcg_limit_bytes
                              ? "memcg" : "global");
    {
      std::lock_guard lock(table_mutex);
      const ResolvedCgroup& charged = by_cpu.path ? by_cpu : by_mem;
      table.record_oom_kill(charged, Clock::now());
      if (const ContainerModel* m = model.find(target_of(charged))) {
        uint64_t peak = 0;
        analysis::LinearTrend growth;  // bytes per second
        for (const auto& p : m->recent_memory) {
          auto* point = d->add_memory_before();
          const int64_t offset_ns = p.time.count() - int64_t(k.ktime_ns);
          point->set_offset_ms(offset_ns / 1'000'000);
          point->set_working_set_bytes(p.working_set);
          point->set_limit_bytes(p.limit.value_or(0));
          peak = std::max(peak, p.working_set);
          growth.add(double(offset_ns) / 1e9, double(p.working_set));
        }
        d->set_working_set_peak_bytes(peak);
        const auto pressure = memory_pressure.oom_context(target_of(charged));
        if (pressure.reclaim_stall_seconds) d->set_reclaim_stall_seconds(*pressure.reclaim_stall_seconds);
        if (pressure.memory_some) {
          d->set_memory_pressure_some_avg10(pressure.memory_some->avg10);
          d->set_memory_pressure_some_seconds(double(pressure.memory_some->total_us) / 1e6);
        }
        if (pressure.memory_full) d->set_memory_pressure_full_avg10(pressure.memory_full->avg10);
        if (const auto slope = growth.slope()) d->set_memory_growth_bytes_per_second(*slope);
      }
    }
    enricher->submit(std::move(e));
    ++oom_kills_seen;
  }

  std::string render_metrics() const {
    std::vector<TargetUsage> targets;
    std::map<UsageTarget, std::vector<PreemptionSeries>> preemption_series;
    size_t cgroups = 0, unresolved = 0;
    uint64_t unresolved_ns = 0;
    struct ModelView {
      std::optional<cgroup::MemoryUsage> memory;
      std::optional<double> cpu_limit_cores;
      std::optional<double> cpu_request_cores, memory_request_bytes;
    };
    std::map<UsageTarget, ModelView> model_view;
    std::vector<analysis::ActiveBreach> active_breaches;
    std::map<std::string, uint64_t> breaches_started;
    {
      std::lock_guard lock(table_mutex);
      for (const auto& [t, m] : model.containers())
        model_view[t] = {m.memory, m.cpu_limit_cores, m.cpu_request_cores, m.memory_request_bytes};
      active_breaches = model.detector().active();
      breaches_started = model.detector().started_total();
      targets = table.targets();
      preemption_series = preemptions.series();
      cgroups = table.cgroup_count();
      unresolved = table.unresolved_count();
      unresolved_ns = table.unresolved_cpu_ns();
    }
    exporters::ExpositionWriter w(64 * 1024 + targets.size() * 512);
    const bool uid = config.pod_uid_label;
    // Names from the pod cache, looked up once per target and render.
    std::map<UsageTarget, metadata::ResolvedNames> names;
    for (const auto& t : targets) names.emplace(t.target, names_of(t.target));

    auto container_labels = [&](const TargetUsage& t, std::vector<Label>& l) {
      const auto& n = names.at(t.target);
      l.clear();
      l.push_back({"node", node});
      l.push_back({"namespace", n.namespace_});
      l.push_back({"pod", n.pod});
      l.push_back({"container", n.container});
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
    // Memory as the kubelet sees it, and the limits the kernel enforces (cgroupfs).
    auto memory_family = [&](const char* name, const char* help, auto field) {
      w.family(name, help, MetricType::gauge);
      for (const auto& t : targets) {
        if (t.target.kind != UsageTarget::Kind::Container) continue;
        auto it = model_view.find(t.target);
        if (it == model_view.end() || !it->second.memory) continue;
        const auto v = field(*it->second.memory);
        if (!v) continue;
        container_labels(t, labels);
        w.sample(labels, double(*v));
      }
    };
    using MU = cgroup::MemoryUsage;
    memory_family("podgauge_container_memory_working_set_bytes",
                  "Memory usage minus inactive file cache, as the kubelet computes it for "
                  "evictions and as metrics-server reports it.",
                  [](const MU& m) { return std::optional<uint64_t>(m.working_set); });
    memory_family("podgauge_container_memory_usage_bytes",
                  "Memory charged to the container's cgroup, page cache included.",
                  [](const MU& m) { return std::optional<uint64_t>(m.usage); });
    memory_family("podgauge_container_memory_rss_bytes", "Anonymous memory of the container.",
                  [](const MU& m) { return std::optional<uint64_t>(m.rss); });
    memory_family("podgauge_container_memory_cache_bytes", "Page cache charged to the container.",
                  [](const MU& m) { return std::optional<uint64_t>(m.page_cache); });
    memory_family("podgauge_container_memory_swap_bytes", "Swap used by the container.",
                  [](const MU& m) { return std::optional<uint64_t>(m.swap); });
    memory_family("podgauge_container_memory_limit_bytes",
                  "Memory limit the kernel enforces on the container (absent when unlimited).",
                  [](const MU& m) { return m.limit; });
    w.family("podgauge_container_cpu_limit_cores",
             "CPU limit the kernel enforces on the container, from its CFS quota and period "
             "(absent when unlimited).",
             MetricType::gauge);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container) continue;
      auto it = model_view.find(t.target);
      if (it == model_view.end() || !it->second.cpu_limit_cores) continue;
      container_labels(t, labels);
      w.sample(labels, *it->second.cpu_limit_cores);
    }
    // Requests come from the pod spec (none standalone); limits are what the kernel enforces.
    auto request_family = [&](const char* name, const char* help, auto field) {
      w.family(name, help, MetricType::gauge);
      for (const auto& t : targets) {
        if (t.target.kind != UsageTarget::Kind::Container) continue;
        auto it = model_view.find(t.target);
        if (it == model_view.end() || !(it->second.*field)) continue;
        container_labels(t, labels);
        w.sample(labels, *(it->second.*field));
      }
    };
    request_family("podgauge_container_cpu_request_cores", "CPU request of the container in its pod spec.",
                   &ModelView::cpu_request_cores);
    request_family("podgauge_container_memory_request_bytes",
                   "Memory request of the container in its pod spec.", &ModelView::memory_request_bytes);
    w.family("podgauge_container_resource_unset",
             "1 when the container has no limit (kind=limit, from the kernel) or no request "
             "(kind=request, from the pod spec; absent when the spec is unknown) for a resource.",
             MetricType::gauge);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container) continue;
      auto it = model_view.find(t.target);
      if (it == model_view.end()) continue;
      const ModelView& m = it->second;
      const bool spec = pod_spec_known(t.target);
      auto flag = [&](const char* resource, const char* kind, bool unset) {
        container_labels(t, labels);
        labels.push_back({"resource", resource});
        labels.push_back({"kind", kind});
        w.sample_integer(labels, unset ? 1 : 0);
      };
      flag("cpu", "limit", !m.cpu_limit_cores);
      if (m.memory) flag("memory", "limit", !m.memory->limit);
      if (spec) {
        flag("cpu", "request", !m.cpu_request_cores);
        flag("memory", "request", !m.memory_request_bytes);
      }
    }
    w.family("podgauge_container_breach_active",
             "1 while a breach rule holds for the container (see podgauge_breach_rule_info).",
             MetricType::gauge);
    for (const auto& b : active_breaches) {
      const auto slash = b.target.find('/');
      // Labels view their strings: these must outlive the sample call.
      const std::string pod_uid = b.target.substr(0, slash);
      const std::string container_id = slash == std::string::npos ? "" : b.target.substr(slash + 1);
      UsageTarget key;
      key.kind = UsageTarget::Kind::Container;
      key.pod_uid = pod_uid;
      key.container_id = container_id;
      const metadata::ResolvedNames n = names_of(key);
      labels.clear();
      labels.push_back({"node", node});
      labels.push_back({"namespace", n.namespace_});
      labels.push_back({"pod", n.pod});
      labels.push_back({"container", n.container});
      if (uid) labels.push_back({"pod_uid", pod_uid});
      labels.push_back({"container_id", container_id});
      labels.push_back({"rule", b.rule});
      w.sample(labels, 1);
    }
    w.family("podgauge_breaches_total", "Breaches started on this node, by rule.",
             MetricType::counter);
    for (const auto& r : model.detector().rules())
      w.sample_integer({{"node", node}, {"rule", r.name}},
                       breaches_started.count(r.name) ? breaches_started.at(r.name) : 0);
    w.family("podgauge_container_info",
             "Container identity read from its cgroup (runtime, QoS class, cgroup path) and its "
             "pod's workload owner from the API server.",
             MetricType::gauge);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::Container) continue;
      container_labels(t, labels);
      labels.push_back({"runtime", t.runtime});
      labels.push_back({"qos", t.qos});
      labels.push_back({"cgroup", t.cgroup_path});
      labels.push_back({"owner_kind", names.at(t.target).owner_kind});
      labels.push_back({"owner_name", names.at(t.target).owner_name});
      w.sample(labels, 1);
    }
    w.family("podgauge_pod_overhead_cpu_usage_seconds_total",
             "On-CPU time in a pod's cgroups outside its containers: component=pod for the pod "
             "cgroup itself, runtime for runtime helpers such as CRI-O conmon.",
             MetricType::counter);
    for (const auto& t : targets) {
      if (t.target.kind != UsageTarget::Kind::PodOverhead) continue;
      const auto& n = names.at(t.target);
      labels.clear();
      labels.push_back({"node", node});
      labels.push_back({"namespace", n.namespace_});
      labels.push_back({"pod", n.pod});
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
    memory_pressure.render(w, node, uid);

    const auto programs = all_programs();
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
    if (mem_probes) counters.push_back(mem_probes->counters());
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
    w.family("podgauge_agent_process_exits_held",
             "Process exit records waiting for their cgroup to be resolved (made since the "
             "last cgroup walk).",
             MetricType::gauge);
    w.sample_integer({}, held_exits.held());
    w.family("podgauge_agent_process_exits_unresolved_total",
             "Process exit records dropped because their cgroup stayed unknown (made and "
             "removed between two walks) or too many waited.",
             MetricType::counter);
    w.sample_integer({}, held_exits.dropped());
    w.family("podgauge_agent_cgroups", "Cgroups with CPU time the agent tracks, by state.",
             MetricType::gauge);
    w.sample_integer({{"state", "resolved"}}, cgroups);
    w.sample_integer({{"state", "unresolved"}}, unresolved);
    w.family("podgauge_agent_unresolved_cpu_seconds_total",
             "CPU time of cgroups that vanished before the agent could name them.",
             MetricType::counter);
    w.sample({}, double(unresolved_ns) / 1e9);
    {
      const auto ks = kube->status();
      w.family("podgauge_agent_kubernetes_events_total",
               "Kubernetes Events the agent wrote (OOMKilled on pods), by outcome: created, "
               "patched (a repeat in the series), dropped (rate limit or full queue), failed.",
               MetricType::counter);
      w.sample_integer({{"outcome", "created"}}, ks.events.created);
      w.sample_integer({{"outcome", "patched"}}, ks.events.patched);
      w.sample_integer({{"outcome", "dropped"}}, ks.events.dropped_rate_limited + ks.events.dropped_queue_full);
      w.sample_integer({{"outcome", "failed"}}, ks.events.failed);
    }
    w.family("podgauge_agent_cgroupfs_read_errors_total",
             "Container cgroup files that could not be read or parsed.", MetricType::counter);
    w.sample_integer({}, read_errors.load());
    w.family("podgauge_agent_samples_total", "Sampling rounds completed.", MetricType::counter);
    w.sample_integer({}, samples.load());
    w.family("podgauge_agent_cgroup_rescans_total",
             "Walks of the cgroup trees: when cgroups were removed (cgroup_rmdir tracepoint) or "
             "made ones could not be recorded, else on a timer.",
             MetricType::counter);
    w.sample_integer({}, rescans.load());
    w.family("podgauge_agent_cgroups_made_total",
             "Cgroups the kernel reported made (cgroup_mkdir tracepoint; a path made in several "
             "v1 hierarchies counts once), each indexed on its own without a walk unless a walk "
             "ran in the same round.",
             MetricType::counter);
    w.sample_integer({}, cgroups_made.load());
    w.family("podgauge_agent_cgroup_files_open",
             "cgroupfs files the sampler keeps open to re-read each round.", MetricType::gauge);
    w.sample_integer({}, files_open.load());
    w.family("podgauge_agent_sample_duration_seconds", "Duration of the last sampling round.",
             MetricType::gauge);
    w.sample({}, double(last_sample_ns.load()) / 1e9);
    w.family("podgauge_agent_events_total", "Events published on /v1/events.", MetricType::counter);
    w.sample_integer({}, events.last_seq());
    // Kubernetes join.
    const auto ks = kube->status();
    w.family("podgauge_agent_kubernetes_synced",
             "1 once the first LIST of this node's pods is in the cache (0 standalone or while "
             "the API server has not answered).",
             MetricType::gauge);
    w.sample_integer({{"mode", ks.mode}}, ks.synced ? 1 : 0);
    w.family("podgauge_agent_kubernetes_pods",
             "Pods in the metadata cache: live, or deleted but kept resolvable for 10 minutes.",
             MetricType::gauge);
    w.sample_integer({{"state", "live"}}, ks.pods);
    w.sample_integer({{"state", "deleted"}}, ks.deleted_pods);
    w.family("podgauge_agent_kubernetes_decode_errors_total",
             "Pod objects from the API server that could not be decoded and were skipped.",
             MetricType::counter);
    w.sample_integer({}, ks.decode_errors);
    w.family("podgauge_agent_kubernetes_relists_total",
             "Full LISTs of this node's pods (the first, then after 410 Gone or errors).",
             MetricType::counter);
    w.sample_integer({}, ks.lists);
    w.family("podgauge_agent_kubernetes_request_errors_total",
             "Failed requests to the API server (each is retried with backoff).",
             MetricType::counter);
    w.sample_integer({}, ks.request_errors);
    w.family("podgauge_agent_events_held",
             "Events waiting for the pod cache to name their pod and container.", MetricType::gauge);
    w.sample_integer({}, enricher->held());
    w.family("podgauge_agent_events_unnamed_total",
             "Events published without pod/container names after waiting --metadata-wait.",
             MetricType::counter);
    w.sample_integer({}, enricher->expired_unnamed());
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

  metadata::ResolvedNames names_of(const UsageTarget& t) const {
    if (!kube->enabled() || t.kind == UsageTarget::Kind::HostGroup) return {};
    return kube->cache().resolve(t.pod_uid, t.container_id);
  }

  nlohmann::json kubernetes_json() const {
    const auto s = kube->status();
    auto or_null = [](const std::string& v) { return v.empty() ? nlohmann::json() : nlohmann::json(v); };
    return {{"mode", s.mode},
            {"synced", s.synced},
            {"server", or_null(s.server)},
            {"context", or_null(s.context)},
            {"error", or_null(s.error)},
            {"pods", s.pods},
            {"deleted_pods", s.deleted_pods},
            {"decode_errors", s.decode_errors},
            {"lists", s.lists},
            {"watch_expired", s.expired},
            {"request_errors", s.request_errors},
            {"events_held", enricher->held()},
            {"events_api", or_null(s.events_api)},
            {"events_error", or_null(s.events_error)},
            {"events_created", s.events.created},
            {"events_patched", s.events.patched}};
  }

  nlohmann::json containers_json() const {
    nlohmann::json out = nlohmann::json::array();
    std::lock_guard lock(table_mutex);
    for (const auto& t : table.targets()) {
      if (t.target.kind != UsageTarget::Kind::Container) continue;
      const auto n = names_of(t.target);
      out.push_back({{"namespace", n.namespace_},
                     {"pod", n.pod},
                     {"container", n.container},
                     {"owner_kind", n.owner_kind},
                     {"owner_name", n.owner_name},
                     {"pod_uid", t.target.pod_uid},
                     {"container_id", t.target.container_id},
                     {"runtime", t.runtime},
                     {"qos", t.qos},
                     {"cgroup", t.cgroup_path},
                     {"cpu_usage_seconds", double(t.cpu_ns) / 1e9},
                     {"oom_kills", t.oom_kills},
                     {"runqueue_latency_seconds_sum", double(t.runqueue.sum_ns) / 1e9},
                     {"runqueue_latency_count", t.runqueue.count},
                     {"cfs_throttled_periods", t.cfs ? nlohmann::json(t.cfs->throttled_periods) : nlohmann::json()}});
      auto& row = out.back();
      auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
      if (const ContainerModel* m = model.find(t.target)) {
        row["cpu_cores"] = opt(m->cpu_cores);
        row["cpu_limit_cores"] = opt(m->cpu_limit_cores);
        row["throttled_percent"] = opt(m->throttled_percent);
        row["cpu_request_cores"] = opt(m->cpu_request_cores);
        row["memory_request_bytes"] = opt(m->memory_request_bytes);
        if (m->memory) {
          row["memory_working_set_bytes"] = m->memory->working_set;
          row["memory_usage_bytes"] = m->memory->usage;
          row["memory_rss_bytes"] = m->memory->rss;
          row["memory_cache_bytes"] = m->memory->page_cache;
          row["memory_swap_bytes"] = m->memory->swap;
          row["memory_limit_bytes"] = opt(m->memory->limit);
        }
      }
    }
    return out;
  }

  nlohmann::json breaches_json() const {
    nlohmann::json out = nlohmann::json::array();
    std::lock_guard lock(table_mutex);
    const int64_t mono = clock_ns(CLOCK_MONOTONIC), real = clock_ns(CLOCK_REALTIME);
    for (const auto& b : model.detector().active()) {
      const auto slash = b.target.find('/');
      UsageTarget key;
      key.kind = UsageTarget::Kind::Container;
      key.pod_uid = b.target.substr(0, slash);
      key.container_id = slash == std::string::npos ? "" : b.target.substr(slash + 1);
      const metadata::ResolvedNames n = names_of(key);
      out.push_back({{"namespace", n.namespace_},
                     {"pod", n.pod},
                     {"container", n.container},
                     {"pod_uid", b.target.substr(0, slash)},
                     {"container_id", slash == std::string::npos ? "" : b.target.substr(slash + 1)},
                     {"rule", b.rule},
                     {"resource", analysis::to_string(b.kind)},
                     {"value", b.value},
                     {"threshold", b.threshold},
                     {"peak", b.peak},
                     {"since_unix_nano", real - (mono - b.since.count())},
                     {"duration_seconds", double(mono - b.since.count()) / 1e9}});
    }
    return out;
  }

  nlohmann::json summary() const {
    nlohmann::json programs = nlohmann::json::array();
    for (const auto& p : all_programs())
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
            {"kubernetes", kubernetes_json()},
            {"cgroup_mode", cgroup::to_string(hierarchies.mode())},
            {"cpu_hierarchy", hierarchy_json(hierarchies.cpu_accounting_hierarchy())},
            {"memory_hierarchy", hierarchy_json(hierarchies.memory_hierarchy())},
            {"keying", loader::to_string(keying)},
            {"features", {{"btf", f.btf}, {"tp_btf", f.tp_btf}, {"mark_victim_task", f.mark_victim_task},
                          {"mark_oom_victim_btf", f.mark_oom_victim_btf}, {"fentry", f.fentry},
                          {"sched_info", f.sched_info}, {"any_context_alloc", f.any_context_alloc}}},
            {"cfs_hierarchy", hierarchy_json(cfs_h)},
            {"programs", programs},
            {"interval_seconds", double(config.interval.count()) / 1e3},
            {"containers", containers},
            {"pods", pods},
            {"events_last_seq", events.last_seq()},
            {"oom_kills", oom_kills_seen.load()},
            {"history", [&] {
               const auto st = history->store().stats();
               return nlohmann::json{{"state_dir", config.state_dir.empty() ? nlohmann::json() : nlohmann::json(config.state_dir)},
                                     {"series", st.series},
                                     {"raw_samples", st.raw_samples},
                                     {"rollup_rows", st.rollup_rows},
                                     {"bytes", st.raw_bytes + st.rollup_bytes},
                                     {"checkpoints", checkpoints.load()},
                                     {"restore_problems", history_problems}};
             }()},
            {"memory_pressure", memory_pressure_summary()},
            {"uptime_seconds",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
  }

  // ---- Memory pressure (issue 3): reclaim stalls, memory.events / failcnt, PSI. ----
  std::unique_ptr<loader::MemoryProbes> mem_probes;  // null when the mem family cannot load
  std::string mem_probes_error;
  CgroupResolver* mem_ids = nullptr;              // resolves the mem family's cgroup ids
  const cgroup::CgroupHierarchy* mem_dirs_h = nullptr;  // memory controller's hierarchy
  CgroupResolver* mem_dirs = nullptr;
  const cgroup::CgroupHierarchy* psi_h = nullptr;  // the v2 tree: per-cgroup PSI files
  CgroupResolver* psi_dirs = nullptr;
  std::unique_ptr<CgroupResolver> psi_resolver;  // when the v2 tree is neither cpu's nor memory's
  MemoryPressureTable memory_pressure;
  // Each container's own cgroup directory in the memory and v2 trees. Sampler thread only.
  std::map<UsageTarget, cgroup::CgroupDir> mem_paths, psi_paths;
  bool paths_ready = false;
  std::chrono::steady_clock::time_point paths_walked;
  std::set<UsageTarget> walked_for;  // live containers when the trees were last walked

  void setup_memory_pressure(const cgroup::CgroupHierarchy& cpu_h, const cgroup::CgroupHierarchy* mem_h) {
    auto resolver_for = [&](const cgroup::CgroupHierarchy* h) -> CgroupResolver* {
      if (!h) return nullptr;
      if (h->mount_point == cpu_h.mount_point) return cpu_resolver.get();
      if (memory_resolver && h->mount_point == memory_resolver->hierarchy().mount_point)
        return memory_resolver.get();
      if (!psi_resolver) {
        psi_resolver = std::make_unique<CgroupResolver>(*h);
        psi_resolver->index().rescan();
      }
      return psi_resolver.get();
    };
    const bool v1_memory = mem_h && mem_h->version == cgroup::CgroupVersion::V1;
    mem_dirs_h = mem_h;
    mem_dirs = resolver_for(mem_h);
    psi_h = hierarchies.default_hierarchy();
    psi_dirs = resolver_for(psi_h);
    mem_ids = v1_memory ? mem_dirs : psi_dirs;
    loader::MemoryProbeOptions mo;
    mo.keying = v1_memory ? loader::MemoryKeying::V1Memory : loader::MemoryKeying::DefaultHierarchy;
    mo.force_raw_tracepoints = config.force_raw_tracepoints;
    try {
      mem_probes = std::make_unique<loader::MemoryProbes>(mo, probes->features());
    } catch (const std::exception& e) {
      // Reclaim stalls are one signal among many: the agent runs without them.
      mem_probes_error = e.what();
      fprintf(stderr, "podgauge: memory reclaim stalls unavailable: %s\n", e.what());
    }
  }

  std::vector<loader::ProgramStatus> all_programs() const {
    auto out = probes->programs();
    for (auto& p : process_probes->programs()) out.push_back(std::move(p));
    if (mem_probes) {
      for (auto& p : mem_probes->programs()) out.push_back(std::move(p));
    } else {
      for (const char* name : {"memcg_reclaim", "direct_reclaim"})
        out.push_back({"mem", name, loader::AttachKind::NotLoaded, mem_probes_error, 0, 0});
    }
    return out;
  }

  // The own cgroup directory of every container in the resolver's hierarchy.
  static std::map<UsageTarget, cgroup::CgroupDir> container_dirs(CgroupResolver& r) {
    std::map<UsageTarget, cgroup::CgroupDir> out;
    for (const auto& [id, entry] : r.index().snapshot()) {
      if (entry.removed || !entry.path) continue;
      const ResolvedCgroup res = r.resolve(id);
      if (!res.path) continue;
      const UsageTarget t = target_of(res);
      if (t.kind != UsageTarget::Kind::Container) continue;
      auto dir = r.hierarchy().absolute_path(*res.path);
      auto [it, inserted] = out.emplace(t, dir);
      if (!inserted && dir.native().size() < it->second.path().size()) it->second = cgroup::CgroupDir(dir);
    }
    return out;
  }

  // Each live container's own cgroup in the memory and v2 trees (memory usage, memory.events,
  // PSI). A container new since the last walk has those trees walked now rather than at the
  // next full rescan, at most once a second (once per container that is in neither).
  void refresh_container_dirs(bool rescan_all, const std::set<UsageTarget>& live) {
    const bool fed = dirs_fed != dirs_fed_seen;
    if (!rescan_all && paths_ready && walked_gen == live_gen && !fed) return;  // nothing new since the walk
    if (fed && paths_ready && !rescan_all) {  // new cgroups were indexed one by one: no walk
      if (mem_dirs) mem_paths = container_dirs(*mem_dirs);
      if (psi_dirs) psi_paths = container_dirs(*psi_dirs);
      dirs_fed_seen = dirs_fed;
      ++paths_gen;
    }
    bool missing = false;
    for (const auto& t : live)
      if (!walked_for.count(t) && ((mem_dirs && !mem_paths.count(t)) || (psi_dirs && !psi_paths.count(t))))
        missing = true;
    const auto now = std::chrono::steady_clock::now();
    if (rescan_all || !paths_ready || (missing && now - paths_walked >= std::chrono::seconds(1))) {
      for (CgroupResolver* r : {mem_dirs, psi_dirs})
        if (r && r != cpu_resolver.get() && (missing || r == psi_resolver.get())) r->index().rescan();
      if (mem_dirs) mem_paths = container_dirs(*mem_dirs);
      if (psi_dirs) psi_paths = container_dirs(*psi_dirs);
      paths_ready = true;
      paths_walked = now;
      dirs_fed_seen = dirs_fed;
      walked_for = live;
      walked_gen = live_gen;
      ++paths_gen;
    }
  }

  void sample_memory_pressure(bool rescan_all, const std::set<UsageTarget>& live) {
    if (mem_probes && mem_ids) {
      std::vector<uint64_t> gone;
      for (const auto& s : mem_probes->read_reclaim_stalls()) {
        const ResolvedCgroup r = mem_ids->resolve(s.cgroup_id);
        if (r.removed && rescan_all) gone.push_back(s.cgroup_id);
        if (!r.path) continue;
        const UsageTarget t = target_of(r);
        if (t.kind == UsageTarget::Kind::Container) memory_pressure.observe_reclaim(t, s);
      }
      if (!gone.empty()) mem_probes->forget_cgroups(gone);
    }
    const bool memory_v2 = mem_dirs_h && mem_dirs_h->version == cgroup::CgroupVersion::V2;
    // Between slow rounds only containers not read yet; none while the containers and their
    // dirs are those of the last pass.
    const bool skip_all = !slow_round && pressure_gen == std::pair{live_gen, paths_gen};
    SortedCursor mem_at(mem_paths), psi_at(psi_paths);  // `live` is in target order too
    for (const auto& t : live) {
      if (skip_all) break;
      if (!slow_round && pressure_read.count(t)) continue;
      const cgroup::CgroupDir *mdir = nullptr, *pdir = nullptr;
      if (auto it = mem_at.find(t); it != mem_paths.end()) mdir = &it->second;
      if (auto it = psi_at.find(t); it != psi_paths.end()) pdir = &it->second;
      if (!mdir && !pdir) continue;
      pressure_read.insert(t);
      memory_pressure.record_cgroupfs(t, read_container_pressure(files, mdir, memory_v2, pdir));
    }
    pressure_gen = {live_gen, paths_gen};
    if (slow_round) {
      auto node_psi = read_node_pressure(files);
      memory_pressure.record_node(
          node_psi, node_psi ? "" : "unavailable: no /proc/pressure (kernel without CONFIG_PSI, or booted with psi=0)");
    }
    if (rescan_all && mem_probes) mem_probes->forget_cgroups(memory_pressure.retain(live));
    else if (rescan_all) memory_pressure.retain(live);
  }

  nlohmann::json memory_pressure_summary() const {
    auto s = memory_pressure.summary();
    s["reclaim_stalls"] = mem_probes && mem_probes->measuring() ? "measured" : "unavailable";
    if (!mem_probes_error.empty()) s["reclaim_stalls_error"] = mem_probes_error;
    s["memory_hierarchy"] = mem_dirs_h ? mem_dirs_h->mount_point.string() : "";
    s["psi_hierarchy"] = psi_h ? psi_h->mount_point.string() : "";
    return s;
  }
  // ---- end of memory pressure ----
};

// Before the sampler's FileReader sizes itself: it keeps every container's cgroup files open.
Agent::Agent(AgentConfig config)
    : impl_((cgroup::raise_open_file_limit(), std::make_unique<Impl>(std::move(config)))) {}
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
  for (const auto& p : i.all_programs()) {
    o << ", " << p.name << " via " << loader::to_string(p.attach);
    if (!p.reason.empty()) o << " (" << p.reason << ")";
  }
  o << ", Kubernetes metadata: " << i.kube->describe();
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
        i.probes->poll_oom_kills(kOomPollMs, handler);
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
        i.process_probes->poll_exits(kExitPollMs, handler);
        i.retry_held_exits();
      } catch (const std::exception& e) {
        fprintf(stderr, "podgauge: %s\n", e.what());
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
  });
  auto next = std::chrono::steady_clock::now();
  auto last_rescan = next;
  std::chrono::steady_clock::duration rescan_gap = kRescanMinGap;
  // Walk credit: each walk adds its gap to a debt that time pays back, and a change is walked
  // while the debt is at most one gap. So a change after a quiet spell is walked at once, even
  // right after another walk, while constant churn still averages one walk a gap.
  auto walk_debt_until = next;
  // The last ordinary round's duration (not a slow round's, which reads more files): a walk's
  // own cost is what a walking round takes beyond it.
  std::chrono::steady_clock::duration plain_round{};
  std::optional<uint64_t> seen_changes = i.probes->cgroup_changes();
  while (!stop) {
    const auto now = std::chrono::steady_clock::now();
    // Walk the cgroup trees when the kernel says cgroups came or went, else on a timer: a slow
    // one as a safety net when the mkdir/rmdir tracepoints are attached, the usual 10 s when not.
    // Under constant cgroup churn the walks are spaced so they cost at most ~0.5% of a core.
    const auto changes = i.probes->cgroup_changes();
    const bool rescan = (changes && changes != seen_changes && walk_debt_until <= now + rescan_gap) ||
                        now - last_rescan >= (changes ? kRescanSafetyNet : kRescanEvery);
    if (rescan) {
      last_rescan = now;
      seen_changes = changes;
      ++i.rescans;
    }
    try {
      i.sample(rescan);
    } catch (const std::exception& e) {
      fprintf(stderr, "podgauge: sampling failed: %s\n", e.what());
    }
    const auto took = std::chrono::steady_clock::now() - now;
    if (rescan) {  // the walk's cost beyond a plain round, at most ~0.5% of a core on average
      rescan_gap = std::clamp<std::chrono::steady_clock::duration>(
          (took - std::min(took, plain_round)) * 200, kRescanMinGap, kRescanEvery);
      walk_debt_until = std::max(walk_debt_until, now) + rescan_gap;
    } else if (!i.slow_round)
      plain_round = took;
    next += i.config.interval;
    while (!stop && std::chrono::steady_clock::now() < next)
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          next - std::chrono::steady_clock::now(), kStopCheck));
    if (std::chrono::steady_clock::now() > next + i.config.interval)
      next = std::chrono::steady_clock::now();  // fell behind: don't burst to catch up
  }
  oom_thread.join();
  i.maybe_checkpoint(true);
  exit_thread.join();
}

}  // namespace podgauge::agent
