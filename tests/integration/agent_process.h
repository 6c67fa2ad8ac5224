// The agent binary as a child process, and placing test programs into cgroups.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent_metrics.h"
#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"

namespace podgauge::itest {

// One agent for the whole suite, as on a node: loading BPF once keeps the suite quick.
class AgentProcess {
 public:
  /// `launcher`, when given, runs the agent (e.g. setpriv with a reduced capability set);
  /// `cgroups`, when given, are the cgroup directories it starts in.
  explicit AgentProcess(std::vector<std::string> extra = {},
                        std::vector<std::string> launcher = {},
                        std::vector<std::filesystem::path> cgroups = {}) {
    ProcessSpec spec;
    spec.cgroups = std::move(cgroups);
    spec.argv = launcher;
    spec.argv.insert(spec.argv.end(), {podgauge_binary().string(),
                 "agent",
                 "--listen",
                 "127.0.0.1:0",
                 "--interval",
                 "250ms",
                 "--node-name",
                 "itest-node"});
    // Standalone unless the test connects the agent to an API server.
    if (std::find(extra.begin(), extra.end(), "--kubeconfig") == extra.end())
      spec.argv.push_back("--no-kube");
    spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
    process = std::make_unique<ChildProcess>(spec);
    auto line = process->wait_for_line(
        ChildProcess::Stream::Stdout,
        [](const std::string& l) { return l.find("listening on") != std::string::npos; },
        std::chrono::seconds(20));
    if (!line) throw std::runtime_error("agent did not start; stderr:\n" + process->stderr_text());
    std::smatch m;
    std::regex re(R"(listening on 127\.0\.0\.1:(\d+))");
    if (!std::regex_search(*line, m, re)) throw std::runtime_error("no port in: " + *line);
    url = "http://127.0.0.1:" + m[1].str();
    if (!wait_until([&] { return http_get(url + "/readyz").status == 200; },
                    std::chrono::seconds(10)))
      throw std::runtime_error("agent never became ready; stderr:\n" + process->stderr_text());
  }
  std::string metrics() const { return http_get(url + "/metrics").body; }
  /// Waits until /metrics shows more than `min_seconds` of CPU for the container, up to
  /// `timeout`; returns the last value seen (0 when the container never appeared).
  double wait_for_container_cpu(const std::string& container_id, double min_seconds,
                                std::chrono::milliseconds timeout) const {
    double cpu = 0;
    wait_until(
        [&] {
          cpu = metric_value(metrics(), "podgauge_container_cpu_usage_seconds_total",
                             {{"container_id", container_id}})
                    .value_or(0);
          return cpu > min_seconds;
        },
        timeout);
    return cpu;
  }
  std::string url;
  std::unique_ptr<ChildProcess> process;
};

/// A program spawned straight into the cgroup dirs `dirs` (before exec), output discarded.
inline ProcessSpec in_cgroup(std::vector<std::string> argv,
                             std::vector<std::filesystem::path> dirs) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.cgroups = std::move(dirs);
  spec.stdout_mode = OutputMode::Discard;
  spec.stderr_mode = OutputMode::Discard;
  return spec;
}

}  // namespace podgauge::itest
