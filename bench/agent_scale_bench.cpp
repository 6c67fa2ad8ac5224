// bench/agent_scale_bench — what the agent costs on a node of N pods at a 1 s interval.
//
// Creates N pod cgroups laid out like kubelet's below this process's own cgroup, one container
// each with a sleeping process (every third pod Guaranteed with a memory limit), starts the real
// agent binary with --interval 1s (and --state-dir, so checkpoints are part of the cost), lets it
// warm up, then measures its CPU (utime+stime from /proc/<pid>/stat) over a window and its RSS.
// Prints figures; asserts nothing. Needs root. Everything is removed on exit.
//
//   agent_scale_bench [--pods N] [--containers-per-pod K] [--history-hours H]
//                     [--history-mix node|busy] [--warmup S] [--seconds S]
//                     [--agents BIN,BIN... [--rounds N] [--together yes|no]]
//
// --agents: compare agent binaries side by side: they run in turn, --rounds times, each from a
// copy of the same recorded history, and the medians are printed. --together yes: they run at
// once, each round, and are measured over the same window (each has its BPF programs attached,
// which costs the measured agents nothing: BPF time is charged to the tasks being scheduled).
//
// --history-hours H: before the agent starts, H hours of every container's 12 series are
// recorded as the agent itself records them (ContainerHistory, every 1 s as the agent does) and
// checkpointed into its --state-dir; the agent restores them, so the RSS it reports includes a
// full store (24 h: the 64 MiB target for the whole agent). --history-mix: "node"
// (default) is store_bench's mix of 60% idle, 30% moderate and 10% busy containers; "busy"
// makes every container's CPU rate and working set wander every second, the store's worst
// case. 24 h of 500 containers takes minutes to record.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "podgauge/agent/container_history.h"

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

// How busy a container's recorded history is. Busy: a CPU rate that wanders every second and a
// working set that drifts every second (the store's worst case). Moderate: ~5% of a core, the
// working set moving every ~10 s. Idle (a sleeping sidecar, a cache): ≤ 150 µs of CPU a second,
// the working set moving every ~5 min. The node mix is store_bench's: 60% idle, 30% moderate,
// 10% busy.
enum class Activity { Idle, Moderate, Busy };

// Series for one container over [start_ms, end_ms]: CPU, a working set in whole pages, page
// cache beside it, and limits and CFS counters for the limited ones — what the agent's own
// rounds would have recorded.
void fill_history(podgauge::agent::ContainerHistory& h, const podgauge::agent::UsageTarget& target,
                  bool limited, Activity activity, std::int64_t start_ms, std::int64_t end_ms,
                  std::mt19937_64& rng) {
  using namespace podgauge;
  std::uniform_real_distribution<double> u(0, 1);
  double rate = 0.02 + 0.4 * u(rng);
  double ws = double((30 + rng() % 270) << 20);
  const double cache_share = 0.1 + 0.5 * u(rng);
  uint64_t cpu_ns = 0, periods = 0, throttled = 0, throttled_ns = 0;
  std::int64_t last = start_ms;
  for (std::int64_t t = start_ms; t <= end_ms;) {
    const double dt = double(t - last) / 1000.0;
    last = t;
    if (activity == Activity::Busy) {
      rate = std::clamp(rate * (1 + 0.05 * (u(rng) - 0.5)), 0.005, 0.9);
      cpu_ns += uint64_t(rate * dt * (0.8 + 0.4 * u(rng)) * 1e9);
      ws = std::clamp(ws + double(int64_t(rng() % 65) - 32) * 4096, double(8 << 20), double(1ull << 30));
    } else {
      const bool idle = activity == Activity::Idle;
      cpu_ns += idle ? rng() % 150'000 : uint64_t(0.05 * dt * (0.8 + 0.4 * u(rng)) * 1e9);
      if (rng() % (idle ? 300 : 10) == 0)
        ws = std::clamp(ws + double(int64_t(rng() % 31) - 15) * 4096, double(8 << 20), double(1ull << 30));
    }
    agent::ContainerReading r;
    r.target = target;
    r.cpu_ns = cpu_ns;
    cgroup::MemoryUsage m;
    m.working_set = uint64_t(ws) / 4096 * 4096;
    m.page_cache = uint64_t(ws * cache_share) / 4096 * 4096;
    m.inactive_file = m.page_cache / 2 / 4096 * 4096;
    m.usage = m.working_set + m.inactive_file;
    m.rss = m.usage - m.page_cache;
    if (limited) {
      m.limit = 512ull << 20;
      r.cpu_limit_cores = 1.0;
      periods += uint64_t(dt * 10);
      if (u(rng) < 0.02) throttled += 1, throttled_ns += 3'000'000;
      r.cfs = agent::CfsStats{periods, throttled, throttled_ns};
    }
    r.memory = m;
    h.record(r, 0, t);
    t += 1000;
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double load_average() {
  double l = -1;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  int pods = 250, warmup = 15, seconds = 30, per_pod = 1, history_hours = 0, rounds = 1;
  bool all_busy = false, together = false;
  std::vector<std::string> agents;  // binaries to compare; empty: $PODGAUGE_BIN or the build's
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--pods") pods = std::atoi(argv[i + 1]);
    else if (a == "--containers-per-pod") per_pod = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--history-hours") history_hours = std::max(0, std::atoi(argv[i + 1]));
    else if (a == "--warmup") warmup = std::atoi(argv[i + 1]);
    else if (a == "--seconds") seconds = std::atoi(argv[i + 1]);
    else if (a == "--history-mix" && (std::strcmp(argv[i + 1], "node") == 0 || std::strcmp(argv[i + 1], "busy") == 0))
      all_busy = std::strcmp(argv[i + 1], "busy") == 0;
    else if (a == "--rounds") rounds = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--together" && (std::strcmp(argv[i + 1], "yes") == 0 || std::strcmp(argv[i + 1], "no") == 0))
      together = std::strcmp(argv[i + 1], "yes") == 0;
    else if (a == "--agents") {
      std::stringstream list(argv[i + 1]);
      for (std::string b; std::getline(list, b, ',');)
        if (!b.empty()) agents.push_back(b);
    } else {
      std::fprintf(stderr,
                   "usage: agent_scale_bench [--pods N] [--containers-per-pod K] [--history-hours H] "
                   "[--history-mix node|busy] [--warmup S] [--seconds S] [--agents BIN,BIN... "
                   "[--rounds N] [--together yes|no]]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "agent_scale_bench: needs root (the agent loads BPF; pods are cgroups)\n");
    return 1;
  }
  if (agents.empty()) agents.push_back("");  // the default binary
  const int runs = rounds * int(agents.size());
  CgroupSandbox sandbox;
  std::vector<std::unique_ptr<ChildProcess>> sleepers;
  struct Made {
    podgauge::agent::UsageTarget target;
    bool limited;
  };
  std::vector<Made> containers;
  for (int i = 0; i < pods; ++i) {
    const auto uid = KubeletNames::random_pod_uid();
    const QosClass qos = i % 3 == 0 ? QosClass::Guaranteed : QosClass::Burstable;
    for (int c = 0; c < per_pod; ++c) {
      const auto cid = KubeletNames::random_container_id();
      const auto rel = KubeletNames::systemd_container(qos, uid, "cri-containerd", cid);
      sandbox.create(rel);
      if (qos == QosClass::Guaranteed) sandbox.set_memory_limit(rel, 64ull << 20);
      sleepers.push_back(std::make_unique<ChildProcess>(
          in_cgroup({"/bin/sleep", std::to_string(runs * (warmup + seconds + 20) + 600)}, sandbox.dirs(rel))));
      podgauge::agent::UsageTarget t;
      t.kind = podgauge::agent::UsageTarget::Kind::Container;
      t.pod_uid = uid;
      t.container_id = cid;
      containers.push_back({t, qos == QosClass::Guaranteed});
    }
  }
  char tmpl[] = "/tmp/podgauge-scale-XXXXXX";
  const std::filesystem::path state = ::mkdtemp(tmpl);
  if (history_hours > 0) {
    const auto f0 = std::chrono::steady_clock::now();
    podgauge::agent::ContainerHistory h;
    const std::int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count() / 1000 * 1000;
    std::mt19937_64 rng(42);
    for (std::size_t i = 0; i < containers.size(); ++i) {
      const Activity a = all_busy || i % 10 == 9 ? Activity::Busy
                         : i % 10 < 6            ? Activity::Idle
                                                 : Activity::Moderate;
      fill_history(h, containers[i].target, containers[i].limited, a,
                   now_ms - int64_t(history_hours) * 3'600'000, now_ms, rng);
    }
    const auto info = h.checkpoint(state, now_ms);
    std::printf("  history: %d h of %zu series for %zu containers, %s (%.1f MiB checkpoint) in %.0f s\n",
                history_hours, info.series, containers.size(),
                all_busy ? "all busy" : "60% idle / 30% moderate / 10% busy", double(info.bytes) / (1 << 20),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - f0).count());
  }
  std::printf("agent_scale_bench: %d pods (%d container%s each, sleeping), --interval 1s, %d s warm-up\n", pods,
              per_pod, per_pod == 1 ? "" : "s", warmup);
  // With several binaries, they run in turn, round after round, each from a copy of the same
  // recorded history: side by side on the same node, so the medians compare. With --together
  // they run at once and are measured over the same window: the machine's noise then falls on
  // all of them alike.
  std::vector<std::vector<double>> cpu(agents.size()), rss(agents.size());
  for (int round = 0; round < rounds; ++round) {
    const std::size_t batch = together ? agents.size() : 1;
    for (std::size_t first = 0; first < agents.size(); first += batch) {
      std::vector<std::filesystem::path> states;
      std::vector<std::unique_ptr<AgentProcess>> running;
      for (std::size_t a = first; a < first + batch; ++a) {
        if (!agents[a].empty()) ::setenv("PODGAUGE_BIN", agents[a].c_str(), 1);
        char run_tmpl[] = "/tmp/podgauge-scale-run-XXXXXX";
        states.emplace_back(::mkdtemp(run_tmpl));
        std::filesystem::copy(state, states.back(), std::filesystem::copy_options::recursive);
        running.push_back(
            std::make_unique<AgentProcess>(std::vector<std::string>{"--interval", "1s", "--state-dir", states.back().string()}));
      }
      std::this_thread::sleep_for(std::chrono::seconds(warmup));
      std::vector<double> c0;
      for (const auto& agent : running) c0.push_back(cpu_seconds(agent->process->pid()));
      const auto t0 = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(std::chrono::seconds(seconds));
      std::vector<double> c1;
      for (const auto& agent : running) c1.push_back(cpu_seconds(agent->process->pid()));
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (std::size_t i = 0; i < running.size(); ++i) {
        const std::size_t a = first + i;
        const pid_t pid = running[i]->process->pid();
        cpu[a].push_back(100.0 * (c1[i] - c0[i]) / wall);
        rss[a].push_back(status_kib(pid, "VmRSS") / 1024.0);
        if (agents.size() > 1)
          std::printf("  round %d, %s (load %.2f):\n", round + 1, agents[a].c_str(), load_average());
        std::printf("  agent CPU over %.0f s: %.2f%% of one core (%.3f s)\n", wall, cpu[a].back(), c1[i] - c0[i]);
        std::printf("  agent RSS: %.1f MiB now, peak %.1f MiB\n", rss[a].back(), status_kib(pid, "VmHWM") / 1024.0);
      }
      std::fflush(stdout);
      for (const auto& agent : running) {
        agent->process->kill(SIGTERM);
        agent->process->wait(15s);
      }
      running.clear();
      for (const auto& dir : states) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
      }
    }
  }
  if (agents.size() > 1 || rounds > 1)
    for (std::size_t a = 0; a < agents.size(); ++a)
      std::printf("  median of %d: CPU %.2f%%, RSS %.1f MiB  %s\n", rounds, median(cpu[a]), median(rss[a]),
                  agents[a].c_str());
  std::error_code ec;
  std::filesystem::remove_all(state, ec);
  return 0;
}
