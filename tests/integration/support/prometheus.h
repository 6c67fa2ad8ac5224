#pragma once
// The real Prometheus server and promtool, driven from tests.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace podgauge::itest {

class ChildProcess;

/// Runs /usr/bin/prometheus on 127.0.0.1:<free port>, scraping one target every second as job
/// "podgauge", with its config and TSDB in a private temp dir. The constructor returns once
/// /-/ready answers 200 and throws std::runtime_error with what to install or what prometheus
/// logged otherwise. The destructor stops it and removes the temp dir.
/// Thread-safety: queries may run from any thread; construction/destruction from one.
class PrometheusServer {
 public:
  struct Options {
    std::string target{};  // "127.0.0.1:9742"; empty: scrape nothing
    std::string metrics_path = "/metrics";
    std::string job = "podgauge";
    std::string rules_yaml{};  // contents of a rule file; empty: none
    std::filesystem::path binary = "/usr/bin/prometheus";
    std::chrono::milliseconds ready_timeout{30000};
  };

  explicit PrometheusServer(Options options);
  explicit PrometheusServer(std::string target);  // Options{.target = target}
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:<port>"

  /// Instant query via /api/v1/query. Returns the response's "data" object
  /// ({"resultType": "vector", "result": [...]}); throws std::runtime_error on an HTTP error
  /// or a non-"success" status, quoting Prometheus' error.
  nlohmann::json query(std::string_view promql) const;
  /// The "result" array of query(), waiting up to `timeout` until it is non-empty; returns
  /// the last (possibly empty) result at the deadline.
  nlohmann::json wait_for_result(std::string_view promql, std::chrono::milliseconds timeout) const;
  /// "data" of /api/v1/targets ({"activeTargets": [...], "droppedTargets": [...]}).
  nlohmann::json targets() const;
  /// Health of the configured target ("up", "down", "unknown"), "" if not listed yet.
  std::string target_health() const;
  /// Waits until the configured target was scraped successfully.
  bool wait_for_target_up(std::chrono::milliseconds timeout) const;
  /// "data" of /api/v1/rules (only meaningful with Options::rules_yaml).
  nlohmann::json rules() const;
  /// What prometheus logged (stderr) so far — for failure messages.
  std::string log() const;

 private:
  nlohmann::json get_api(const std::string& path_and_query) const;

  Options options_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

struct PromtoolResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};

/// `promtool check metrics` with `exposition` on stdin: exit 0 when the text parses and passes
/// the linter, 1 otherwise. Throws std::runtime_error if /usr/bin/promtool is missing.
PromtoolResult promtool_check_metrics(std::string_view exposition);

/// URL-encodes a query parameter value.
std::string url_encode(std::string_view text);

}  // namespace podgauge::itest
