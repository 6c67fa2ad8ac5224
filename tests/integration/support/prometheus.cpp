#include "support/prometheus.h"

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"

namespace podgauge::itest {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

void require_binary(const fs::path& binary) {
  if (::access(binary.c_str(), X_OK) != 0)
    throw std::runtime_error(binary.string() +
                             " is missing — install it: apt-get install prometheus");
}

void write_text(const fs::path& path, std::string_view text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

std::string config_yaml(const PrometheusServer::Options& o, bool with_rules) {
  std::string yaml =
      "global:\n"
      "  scrape_interval: 1s\n"
      "  scrape_timeout: 1s\n"
      "  evaluation_interval: 1s\n";
  if (with_rules) yaml += "rule_files:\n  - rules.yml\n";
  yaml += "scrape_configs:\n";
  if (!o.target.empty()) {
    yaml += "  - job_name: " + o.job +
            "\n"
            "    metrics_path: " +
            o.metrics_path +
            "\n"
            "    static_configs:\n"
            "      - targets: ['" +
            o.target + "']\n";
  } else {
    yaml += "  []\n";
  }
  return yaml;
}

}  // namespace

std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

PrometheusServer::PrometheusServer(std::string target)
    : PrometheusServer(Options{.target = std::move(target)}) {}

PrometheusServer::PrometheusServer(Options options) : options_(std::move(options)) {
  require_binary(options_.binary);
  dir_ = make_temp_dir("podgauge-prometheus");
  try {
    const bool with_rules = !options_.rules_yaml.empty();
    if (with_rules) write_text(dir_ / "rules.yml", options_.rules_yaml);
    write_text(dir_ / "prometheus.yml", config_yaml(options_, with_rules));

    // The free port can be taken between probing and binding: retry with a new one.
    std::string last_log;
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = free_loopback_port();
      process_ = std::make_unique<ChildProcess>(ProcessSpec{
          .argv = {options_.binary.string(), "--config.file=" + (dir_ / "prometheus.yml").string(),
                   "--storage.tsdb.path=" + (dir_ / "data").string(),
                   "--storage.tsdb.retention.time=1h",
                   "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                   "--web.enable-lifecycle", "--log.level=warn"},
          .stdout_mode = OutputMode::Discard,
          .stderr_mode = OutputMode::File,
          .stderr_file = dir_ / "prometheus.log",
          .working_dir = dir_,
      });
      const bool ready = wait_until(
          [&] {
            if (!process_->running()) return true;
            return http_get(url() + "/-/ready", 1s).status == 200;
          },
          options_.ready_timeout, 100ms);
      if (ready && process_->running()) return;
      last_log = process_->stderr_text();
      const auto status = process_->stop();
      last_log += "\n(" + status.describe() + ")";
      if (last_log.find("address already in use") == std::string::npos) break;
    }
    throw std::runtime_error("prometheus did not become ready on 127.0.0.1:" +
                             std::to_string(port_) + "; its log:\n" + last_log);
  } catch (...) {
    process_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    throw;
  }
}

PrometheusServer::~PrometheusServer() {
  process_.reset();  // SIGTERM, SIGKILL after 2 s, reap
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string PrometheusServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::string PrometheusServer::log() const { return process_ ? process_->stderr_text() : ""; }

nlohmann::json PrometheusServer::get_api(const std::string& path_and_query) const {
  const HttpResponse r = http_get(url() + path_and_query, 10s);
  if (r.status == 0) throw std::runtime_error("prometheus " + path_and_query + ": " + r.error);
  nlohmann::json body = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded())
    throw std::runtime_error("prometheus " + path_and_query + ": HTTP " + std::to_string(r.status) +
                             ", not JSON: " + r.body);
  if (!r.ok() || body.value("status", "") != "success")
    throw std::runtime_error("prometheus " + path_and_query + ": HTTP " + std::to_string(r.status) +
                             ": " + body.value("errorType", "") + ": " +
                             body.value("error", r.body));
  return body["data"];
}

nlohmann::json PrometheusServer::query(std::string_view promql) const {
  return get_api("/api/v1/query?query=" + url_encode(promql));
}

nlohmann::json PrometheusServer::wait_for_result(std::string_view promql,
                                                 std::chrono::milliseconds timeout) const {
  nlohmann::json result = nlohmann::json::array();
  wait_until(
      [&] {
        result = query(promql)["result"];
        return result.is_array() ? !result.empty() : !result.is_null();
      },
      timeout, 250ms);
  return result;
}

nlohmann::json PrometheusServer::targets() const { return get_api("/api/v1/targets"); }

std::string PrometheusServer::target_health() const {
  for (const auto& t : targets().value("activeTargets", nlohmann::json::array()))
    if (t.value("scrapePool", "") == options_.job) return t.value("health", "");
  return "";
}

bool PrometheusServer::wait_for_target_up(std::chrono::milliseconds timeout) const {
  return wait_until([&] { return target_health() == "up"; }, timeout, 250ms);
}

nlohmann::json PrometheusServer::rules() const { return get_api("/api/v1/rules"); }

PromtoolResult promtool_check_metrics(std::string_view exposition) {
  const fs::path promtool = "/usr/bin/promtool";
  if (::access(promtool.c_str(), X_OK) != 0)
    throw std::runtime_error(promtool.string() +
                             " is missing — install it: apt-get install prometheus");
  RunResult r = run_process({promtool.string(), "check", "metrics"}, 30s, exposition);
  return {r.status.exited ? r.status.code : 128 + r.status.signal, r.out + r.err};
}

}  // namespace podgauge::itest
