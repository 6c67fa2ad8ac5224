// bench/agent_scale_bench — what the agent costs on a node of N pods at a 1 s interval.
//
// Creates N pod cgroups laid out like kubelet's below this process's own cgroup, one container
// each with a sleeping process (every third pod Guaranteed with a memory limit), starts the real
// agent binary with --interval 1s (and --state-dir, so checkpoints are part of the cost), lets it
// warm up, then measures its CPU (utime+stime from /proc/<pid>/stat) over a window and its RSS.
// Prints figures; asserts nothing. Needs root. Everything is removed on exit.
//
//   agent_scale_bench [--pods N] [--warmup S] [--seconds S]
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent_process.h"
#include "support/cgroup_sandbox.h"
#include "support/process.h"

using namespace podgauge::itest;
using namespace std::chrono_literals;

namespace {

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  std::istringstream rest(s.substr(s.rfind(')') + 2));
  std::string field;
  unsigned long long ut = 0, st = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) ut = std::stoull(field);
    if (i == 15) st = std::stoull(field);
  }
  return double(ut + st) / double(sysconf(_SC_CLK_TCK));
}

long status_kib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  int pods = 250, warmup = 15, seconds = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--pods") pods = std::atoi(argv[i + 1]);
    else if (a == "--warmup") warmup = std::atoi(argv[i + 1]);
    else if (a == "--seconds") seconds = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: agent_scale_bench [--pods N] [--warmup S] [--seconds S]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "agent_scale_bench: needs root (the agent loads BPF; pods are cgroups)\n");
    return 1;
  }
  CgroupSandbox sandbox;
  std::vector<std::unique_ptr<ChildProcess>> sleepers;
  for (int i = 0; i < pods; ++i) {
    const auto uid = KubeletNames::random_pod_uid();
    const auto cid = KubeletNames::random_container_id();
    const QosClass qos = i % 3 == 0 ? QosClass::Guaranteed : QosClass::Burstable;
    const auto rel = KubeletNames::systemd_container(qos, uid, "cri-containerd", cid);
    sandbox.create(rel);
    if (qos == QosClass::Guaranteed) sandbox.set_memory_limit(rel, 64ull << 20);
    sleepers.push_back(std::make_unique<ChildProcess>(
        in_cgroup({"/bin/sleep", std::to_string(warmup + seconds + 60)}, sandbox.dirs(rel))));
  }
  char tmpl[] = "/tmp/podgauge-scale-XXXXXX";
  const std::filesystem::path state = ::mkdtemp(tmpl);
  {
    AgentProcess agent({"--interval", "1s", "--state-dir", state.string()});
    const pid_t pid = agent.process->pid();
    std::this_thread::sleep_for(std::chrono::seconds(warmup));
    const double c0 = cpu_seconds(pid);
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    const double c1 = cpu_seconds(pid);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("agent_scale_bench: %d pods (1 container each, sleeping), --interval 1s, %d s warm-up\n", pods,
                warmup);
    std::printf("  agent CPU over %.0f s: %.2f%% of one core (%.3f s)\n", wall, 100.0 * (c1 - c0) / wall, c1 - c0);
    std::printf("  agent RSS: %.1f MiB now, peak %.1f MiB\n", status_kib(pid, "VmRSS") / 1024.0,
                status_kib(pid, "VmHWM") / 1024.0);
    agent.process->kill(SIGTERM);
    agent.process->wait(15s);
  }
  std::error_code ec;
  std::filesystem::remove_all(state, ec);
  return 0;
}
