// Proves the integration-test toolkit on the real machine: cgroups, processes, accounting,
// OOM kills, Prometheus and promtool.

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "support/cgroup_sandbox.h"
#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"
#include "support/prometheus.h"

namespace podgauge::itest {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "cpuacct" -> "/process_api/.../x" from /proc/<pid>/cgroup; "unified" -> the 0:: line.
std::string cgroup_of(pid_t pid, const CgroupHierarchy& h) {
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    const std::string list = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (h.v2 && line.starts_with("0::")) return path;
    if (!h.v2 && !list.empty()) {
      std::string name;
      std::istringstream parts(list);
      std::string part;
      while (std::getline(parts, part, ','))
        name += (name.empty() ? "" : ",") + (part.starts_with("name=") ? part.substr(5) : part);
      if (name == h.name) return path;
    }
  }
  return "";
}

TEST(CgroupSandbox, discovers_own_cgroup_in_every_hierarchy) {
  const auto hierarchies = discover_cgroup_hierarchies();
  ASSERT_FALSE(hierarchies.empty()) << "no cgroup hierarchies mounted";
  for (const auto& h : hierarchies) {
    EXPECT_TRUE(fs::is_directory(h.own_dir)) << h.name << ": " << h.own_dir;
    EXPECT_TRUE(fs::exists(h.own_dir / "cgroup.procs")) << h.name;
  }
}

TEST(CgroupSandbox, creates_kubelet_tree_in_all_hierarchies_and_removes_it) {
  const std::string uid = KubeletNames::random_pod_uid();
  const std::string id = KubeletNames::random_container_id();
  const std::string systemd =
      KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", id);
  const std::string cgroupfs = KubeletNames::cgroupfs_container(QosClass::Guaranteed, uid, id);
  ASSERT_EQ(id.size(), 64u);
  ASSERT_EQ(uid.size(), 36u);
  std::string uid_underscored = uid;
  std::replace(uid_underscored.begin(), uid_underscored.end(), '-', '_');
  EXPECT_EQ(systemd, "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                         uid_underscored + ".slice/cri-containerd-" + id + ".scope");
  EXPECT_EQ(cgroupfs, "kubepods/pod" + uid + "/" + id);

  std::vector<fs::path> roots;
  {
    CgroupSandbox sandbox;
    sandbox.create(systemd);
    sandbox.create(cgroupfs);
    for (const char* wanted : {"cpu", "cpuacct", "memory", "pids", "unified"})
      EXPECT_TRUE(sandbox.has(wanted)) << "sandbox lacks the " << wanted << " hierarchy";

    for (const auto& h : sandbox.hierarchies()) {
      SCOPED_TRACE(h.name);
      roots.push_back(sandbox.path_in(h.name));
      const fs::path dir = sandbox.path_in(h.name, systemd);
      ASSERT_TRUE(fs::is_directory(dir)) << dir;
      ASSERT_TRUE(fs::is_directory(sandbox.path_in(h.name, cgroupfs)));
      struct stat st {};
      ASSERT_EQ(::stat(dir.c_str(), &st), 0);
      EXPECT_EQ(sandbox.id_in(h.name, systemd), st.st_ino);
      // Below our own cgroup, ending in the kubelet path.
      const std::string rel = sandbox.path_relative_to_mount(h.name, systemd);
      EXPECT_EQ(rel, (fs::path(h.own_path) / sandbox.name() / systemd).string());
      EXPECT_TRUE(rel.ends_with("/" + sandbox.name() + "/" + systemd)) << rel;
    }
    EXPECT_EQ(sandbox.path_in("memory", systemd).parent_path().filename(),
              "kubepods-burstable-pod" + uid_underscored + ".slice");
  }
  ASSERT_FALSE(roots.empty());
  for (const auto& root : roots) EXPECT_FALSE(fs::exists(root)) << "left behind: " << root;
}

TEST(CgroupSandbox, destructor_kills_processes_left_inside) {
  std::optional<ChildProcess> sleeper;  // outlives the sandbox on purpose
  fs::path root;
  {
    CgroupSandbox sandbox;
    const std::string rel = "kubepods/besteffort/pod1/c1";
    sandbox.create(rel);
    root = sandbox.path_in("memory");
    sleeper.emplace(ProcessSpec{.argv = {"sleep", "60"}, .cgroups = sandbox.dirs(rel)});
    ASSERT_TRUE(wait_until([&] { return !sandbox.pids("memory", rel).empty(); }, 2s));
  }
  EXPECT_FALSE(fs::exists(root));
  const auto status = sleeper->wait(2s);
  ASSERT_TRUE(status) << "the sandbox destructor left the sleeper running";
  EXPECT_TRUE(status->killed_by(SIGKILL)) << status->describe();
}

TEST(CgroupSandbox, burner_cpu_time_shows_in_cpuacct) {
  CgroupSandbox sandbox;
  const std::string rel =
      KubeletNames::systemd_container(QosClass::Burstable, KubeletNames::random_pod_uid(),
                                      "cri-containerd", KubeletNames::random_container_id());
  sandbox.create(rel);

  // 1 s of its own CPU time, not wall time: the host's other load must not change the claim.
  ChildProcess burner(ProcessSpec{.argv = {helper_binary("burn").string(), "1", "pg-burn", "cpu"},
                                  .cgroups = sandbox.dirs(rel)});
  // Placed before exec: the running program is already in every hierarchy's cgroup.
  for (const auto& h : sandbox.hierarchies())
    EXPECT_EQ(cgroup_of(burner.pid(), h), sandbox.path_relative_to_mount(h.name, rel)) << h.name;
  // The helper renames itself right after exec.
  const std::string comm_file = "/proc/" + std::to_string(burner.pid()) + "/comm";
  EXPECT_TRUE(wait_until([&] { return read_text(comm_file) == "pg-burn\n"; }, 2s, 5ms))
      << read_text(comm_file);

  const auto status = burner.wait(30s);
  ASSERT_TRUE(status) << "burning 1 s of CPU did not finish within 30 s";
  ASSERT_TRUE(status->success()) << status->describe() << "\n" << burner.stderr_text();

  const double usage = sandbox.cpuacct_usage_ns(rel) / 1e9;
  const double own = std::chrono::duration<double>(status->cpu_time).count();
  // The burner counts its 1 s from its own start; exec and start-up add to that (a lot under
  // emulation in vmtests), so the cgroup is compared with the process' rusage, not with 1 s.
  EXPECT_GE(usage, 0.9) << "burner CPU time by rusage: " << own << " s";
  EXPECT_NEAR(usage, own, 0.05) << "cgroup accounting disagrees with the process' rusage";
  if (sandbox.has("unified")) {
    const double v2 = sandbox.read_key("unified", rel, "cpu.stat", "usage_usec") / 1e6;
    EXPECT_NEAR(v2, usage, 0.05) << "v2 cpu.stat usage_usec disagrees with v1 cpuacct.usage";
  }
}

TEST(CgroupSandbox, allocator_over_memory_limit_is_oom_killed) {
  CgroupSandbox sandbox;
  const std::string rel =
      KubeletNames::systemd_container(QosClass::Burstable, KubeletNames::random_pod_uid(),
                                      "cri-containerd", KubeletNames::random_container_id());
  sandbox.create(rel);
  sandbox.set_memory_limit(rel, 64ull << 20);
  ASSERT_EQ(sandbox.memory_oom_kills(rel), 0u);

  ChildProcess alloc(
      ProcessSpec{.argv = {helper_binary("alloc").string(), "256"}, .cgroups = sandbox.dirs(rel)});
  const auto status = alloc.wait(30s);
  ASSERT_TRUE(status) << "alloc 256 neither finished nor died within 30 s";
  EXPECT_TRUE(status->killed_by(SIGKILL)) << status->describe() << "\nalloc stderr:\n"
                                          << alloc.stderr_text();
  EXPECT_EQ(alloc.stderr_text().find("done"), std::string::npos);
  EXPECT_EQ(sandbox.memory_oom_kills(rel), 1u);
}

TEST(ChildProcess, reads_lines_of_a_live_child_and_passes_env) {
  ChildProcess child(ProcessSpec{
      .argv = {"/bin/sh", "-c", "echo \"listening on $PG_ADDR\"; echo second; exec sleep 30"},
      .env = {{"PG_ADDR", "127.0.0.1:1234"}}});
  EXPECT_EQ(child.read_stdout_line(5s), "listening on 127.0.0.1:1234");
  EXPECT_EQ(child.read_stdout_line(5s), "second");
  EXPECT_EQ(child.read_stdout_line(200ms), std::nullopt);  // alive, but silent
  EXPECT_TRUE(child.running());
  child.kill(SIGTERM);
  const auto status = child.wait(5s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->killed_by(SIGTERM)) << status->describe();
}

TEST(ChildProcess, reports_exec_and_cgroup_errors) {
  EXPECT_THROW(ChildProcess({"/nonexistent/podgauge-no-such-program"}), std::system_error);
  try {
    ChildProcess child(ProcessSpec{.argv = {"/bin/true"},
                                   .cgroups = {"/sys/fs/cgroup/memory/podgauge-no-such-cgroup"}});
    FAIL() << "joining a missing cgroup did not throw";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("podgauge-no-such-cgroup"), std::string::npos) << e.what();
  }
}

TEST(ChildProcess, forker_children_exit_with_the_given_code) {
  ChildProcess forker({helper_binary("forker").string(), "5", "3"});
  const auto status = forker.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->success()) << status->describe() << "\n" << forker.stderr_text();
  EXPECT_NE(forker.stderr_text().find("5 of 5 children exited with 3"), std::string::npos);
}

TEST(Http, get_reports_refused_connection_without_throwing) {
  const auto r = http_get("http://127.0.0.1:" + std::to_string(free_loopback_port()) + "/", 1s);
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.error.empty());
}

// A tiny agent stand-in on loopback: /metrics for Prometheus, a never-ending NDJSON stream on
// /v1/events for HttpLineStream.
class FakeExporter {
 public:
  explicit FakeExporter(std::string body) : body_(std::move(body)) {
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(body_, "text/plain; version=0.0.4");
    });
    server_.Get("/v1/events", [](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider(
          "application/x-ndjson", [sent = 0](std::size_t, httplib::DataSink& sink) mutable {
            if (sent < 2) {
              const std::string line = "{\"seq\":" + std::to_string(++sent) + "}\n";
              return sink.write(line.data(), line.size());
            }
            std::this_thread::sleep_for(10ms);  // stay open, silent, until the server stops
            return true;
          });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    wait_until([this] { return server_.is_running(); }, 5s, 10ms);
  }
  ~FakeExporter() {
    server_.stop();
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::string body_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(Http, line_stream_reads_an_open_ndjson_stream) {
  FakeExporter agent("");
  HttpLineStream events("http://" + agent.address() + "/v1/events?follow=true");
  EXPECT_EQ(events.read_line(5s), "{\"seq\":1}");
  EXPECT_EQ(events.read_line(5s), "{\"seq\":2}");
  EXPECT_EQ(events.status(), 200);
  EXPECT_EQ(events.read_line(200ms), std::nullopt);  // open but silent
  EXPECT_FALSE(events.ended()) << events.error();
}

TEST(PrometheusServer, scrapes_a_target_and_answers_queries) {
  FakeExporter exporter(
      "# HELP podgauge_selftest_value A constant.\n"
      "# TYPE podgauge_selftest_value gauge\n"
      "podgauge_selftest_value 42\n");
  ASSERT_EQ(http_get("http://" + exporter.address() + "/metrics").status, 200);

  PrometheusServer prometheus(exporter.address());
  EXPECT_EQ(http_get(prometheus.url() + "/-/ready").status, 200);
  EXPECT_TRUE(prometheus.wait_for_target_up(20s)) << prometheus.targets().dump(2);

  const auto up = prometheus.wait_for_result("up", 20s);
  ASSERT_EQ(up.size(), 1u) << up.dump(2) << "\n" << prometheus.log();
  EXPECT_EQ(up[0]["metric"]["job"], "podgauge");
  EXPECT_EQ(up[0]["metric"]["instance"], exporter.address());
  EXPECT_EQ(up[0]["value"][1], "1");

  const auto value = prometheus.wait_for_result("podgauge_selftest_value", 10s);
  ASSERT_EQ(value.size(), 1u);
  EXPECT_EQ(value[0]["value"][1], "42");
  EXPECT_THROW(prometheus.query("sum(("), std::runtime_error);
}

TEST(Promtool, accepts_good_and_flags_broken_exposition) {
  const auto good = promtool_check_metrics(
      "# HELP podgauge_container_oom_kills_total OOM kills.\n"
      "# TYPE podgauge_container_oom_kills_total counter\n"
      "podgauge_container_oom_kills_total{namespace=\"default\",pod=\"p\"} 1\n");
  EXPECT_EQ(good.exit_code, 0) << good.output;

  const auto broken = promtool_check_metrics("podgauge_bad{pod=\"p\" 1\n");
  EXPECT_NE(broken.exit_code, 0);
  EXPECT_NE(broken.output.find("error"), std::string::npos) << broken.output;

  // Lint, not just syntax: a counter without the _total suffix is flagged.
  const auto lint = promtool_check_metrics(
      "# HELP podgauge_oom_kills OOM kills.\n# TYPE podgauge_oom_kills counter\n"
      "podgauge_oom_kills 1\n");
  EXPECT_NE(lint.exit_code, 0) << lint.output;
}

}  // namespace
}  // namespace podgauge::itest
