// The node agent: kernel probes -> cgroup resolver -> usage table -> /metrics and events.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace podgauge::agent {

struct AgentConfig {
  std::string listen = "0.0.0.0:9742";
  std::string node_name;  // empty: $NODE_NAME, else the hostname
  std::chrono::milliseconds interval{1000};
  std::chrono::seconds history{24 * 3600};
  std::string state_dir;
  bool no_kube = false;
  std::string kubeconfig;
  std::string context;    // kubeconfig context (--context)
  // Longest an event waits for the pod cache to name its pod/container (late resolution).
  std::chrono::milliseconds metadata_wait{5000};
  bool pod_uid_label = true;   // drop for cardinality with --no-pod-uid-label
  bool bpf_stats = false;      // enable kernel BPF run-time stats while running
  bool force_raw_tracepoints = false;
  std::string oom_attach = "auto";  // auto, tp_btf, raw_tp, fentry, kprobe
  std::string cgroup_hierarchy = "auto";  // which hierarchy keys CPU: auto, v1 (cpuacct), v2
  std::string mountinfo = "/proc/self/mountinfo";
  // Breach rules (analysis/breach_detector.h syntax); empty: the defaults. A file holds one
  // rule a line ('#' comments).
  std::vector<std::string> breach_rules;
  std::string breach_rules_file;
  // Process exit records per container cgroup per second, and burst (container main
  // processes are never limited).
  uint64_t process_exit_rate = 100;
  uint64_t process_exit_burst = 200;
};

/// Runs the agent. Construction discovers cgroups, loads BPF and binds the listener, throwing
/// std::runtime_error with an actionable message on failure.
/// Thread-safety: run() on one thread; render_metrics()/summary() from any thread.
class Agent {
 public:
  explicit Agent(AgentConfig config);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /// Samples every interval until `stop` becomes true.
  void run(const std::atomic<bool>& stop);
  int bound_port() const;
  std::string render_metrics() const;
  nlohmann::json summary() const;
  /// One line for the operator: what was detected and chosen.
  std::string startup_report() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// "500ms", "1s", "5m", "24h", "1h30m" -> duration. Throws std::invalid_argument.
std::chrono::milliseconds parse_duration(const std::string& text);

}  // namespace podgauge::agent
