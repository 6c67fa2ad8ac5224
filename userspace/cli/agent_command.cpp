#include "agent_command.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>

#include "podgauge/agent/agent.h"

namespace podgauge::cli {

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

constexpr const char* kUsage = R"(Usage: podgauge agent [flags]

Runs the node agent: CO-RE eBPF programs measure every cgroup's CPU time and OOM kills; the
agent maps cgroups to pods and containers and serves Prometheus metrics and an event stream.
Needs root, or uid 0 with CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE (other uids: and
CAP_DAC_READ_SEARCH).

Flags:
      --listen HOST:PORT     address to serve on (default 0.0.0.0:9742; port 0 picks one)
      --node-name NAME       node name in metrics and events (default $NODE_NAME, else hostname)
      --interval DURATION    sampling interval (default 1s)
      --history DURATION     history to keep (default 24h)
      --state-dir DIR        where to checkpoint history
      --no-kube              standalone: do not look for a Kubernetes API server
      --kubeconfig FILE      kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, else the
                             in-cluster service account, else standalone)
      --context NAME         kubeconfig context (default: current-context)
      --metadata-wait DUR    longest an event waits for its pod to reach the cache, to be
                             published with namespace/pod/container (default 5s; 0 disables)
      --no-pod-uid-label     drop the pod_uid label from metrics (lower cardinality)
      --bpf-stats            enable kernel BPF run-time statistics while running
      --raw-tracepoints      attach raw tracepoints even where tp_btf is available
      --oom-attach KIND      how to catch OOM kills: auto (default), tp_btf, raw_tp, fentry
                             or kprobe (the last two on mark_oom_victim)
      --process-exit-rate N  process exit records per container per second (default 100)
      --process-exit-burst N ... and burst (default 200); container main processes are exempt
      --cgroup-hierarchy H   hierarchy whose cgroup ids key CPU time: auto (default: v2 on
                             pure-v2 nodes, else v1 cpuacct), v1, or v2 (hybrid nodes whose
                             kubelet uses the systemd driver also have the tree in v2)
      --breach-rule RULE     a limit-breach rule (repeatable; replaces the defaults), e.g.
                             memory.limit>=90%/1m, cpu.limit>=90%/5m, cpu.request>=150%/10m,
                             throttling>=25%/1m, memory.time_to_limit<=10m/30s; options
                             ,hysteresis=5,clear=30s,smooth=10s,trend=2m
      --breach-rules-file F  breach rules, one a line ('#' starts a comment)
  -h, --help                 this help

Endpoints: /metrics /healthz /readyz /v1/summary /v1/events?follow=true&since=SEQ /v1/containers
           /v1/breaches /v1/processes
)";

}  // namespace

int agent_main(int argc, char** argv, std::ostream& out, std::ostream& err) {
  agent::AgentConfig config;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto need = [&](const char* flag) -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) throw std::invalid_argument(std::string(flag) + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "-h" || arg == "--help") {
        out << kUsage;
        return 0;
      } else if (arg == "--listen") {
        config.listen = need("--listen");
      } else if (arg == "--node-name") {
        config.node_name = need("--node-name");
      } else if (arg == "--interval") {
        config.interval = agent::parse_duration(need("--interval"));
        if (config.interval.count() < 10) throw std::invalid_argument("--interval must be at least 10ms");
      } else if (arg == "--history") {
        config.history = std::chrono::duration_cast<std::chrono::seconds>(agent::parse_duration(need("--history")));
      } else if (arg == "--state-dir") {
        config.state_dir = need("--state-dir");
      } else if (arg == "--no-kube") {
        config.no_kube = true;
      } else if (arg == "--kubeconfig") {
        config.kubeconfig = need("--kubeconfig");
      } else if (arg == "--context") {
        config.context = need("--context");
      } else if (arg == "--metadata-wait") {
        const std::string v = need("--metadata-wait");
        config.metadata_wait = v == "0" ? std::chrono::milliseconds(0) : agent::parse_duration(v);
      } else if (arg == "--no-pod-uid-label") {
        config.pod_uid_label = false;
      } else if (arg == "--bpf-stats") {
        config.bpf_stats = true;
      } else if (arg == "--cgroup-hierarchy") {
        config.cgroup_hierarchy = need("--cgroup-hierarchy");
      } else if (arg == "--breach-rule") {
        config.breach_rules.push_back(need("--breach-rule"));
      } else if (arg == "--breach-rules-file") {
        config.breach_rules_file = need("--breach-rules-file");
      } else if (arg == "--process-exit-rate") {
        config.process_exit_rate = std::stoull(need("--process-exit-rate"));
      } else if (arg == "--process-exit-burst") {
        config.process_exit_burst = std::stoull(need("--process-exit-burst"));
      } else if (arg == "--raw-tracepoints") {
        config.force_raw_tracepoints = true;
      } else if (arg == "--oom-attach") {
        config.oom_attach = need("--oom-attach");
        if (config.oom_attach != "auto" && config.oom_attach != "tp_btf" &&
            config.oom_attach != "raw_tp" && config.oom_attach != "fentry" &&
            config.oom_attach != "kprobe")
          throw std::invalid_argument("--oom-attach must be auto, tp_btf, raw_tp, fentry or kprobe, not '" +
                                      config.oom_attach + "'");
      } else {
        err << "podgauge agent: unknown flag " << arg << " (see podgauge agent --help)\n";
        return 2;
      }
    } catch (const std::invalid_argument& e) {
      err << "podgauge agent: " << e.what() << "\n";
      return 2;
    }
  }

  if (geteuid() != 0)
    err << "podgauge agent: warning: not running as root; loading BPF needs CAP_BPF and "
           "CAP_PERFMON, reading every cgroup needs CAP_DAC_READ_SEARCH\n";

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  try {
    agent::Agent agent(config);
    err << "podgauge agent: " << agent.startup_report() << "\n";
    std::string host = config.listen.substr(0, config.listen.rfind(':'));
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "[::]") host = "[::1]";
    out << "podgauge: listening on " << host << ":" << agent.bound_port()
        << " (metrics at http://" << host << ":" << agent.bound_port() << "/metrics)" << std::endl;
    agent.run(g_stop);
    err << "podgauge agent: stopping\n";
  } catch (const std::exception& e) {
    err << "podgauge agent: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace podgauge::cli
