// podgauge-fakeapi: the fake Kubernetes API server as a process, for tests in other processes
// and manual runs with the real kubectl:
//   podgauge-fakeapi --dir /tmp/fa & KUBECONFIG=/tmp/fa/kubeconfig-token.yaml kubectl get pods -A
#include <signal.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "fake_api_server.h"

using podgauge::fakeapi::FakeApiServer;
using podgauge::fakeapi::PolicyRule;

namespace {

const char* kUsage = R"(usage: podgauge-fakeapi [flags]
  --host ADDR                 listen address (default 127.0.0.1; ::1 works too)
  --port N                    HTTPS port (default 0: any free port)
  --http-port N               also serve plain HTTP (tokens only) on N (0: any free port)
  --dir DIR                   where ca.crt and the kubeconfigs go (default: a temp dir)
  --token TOKEN=USER[:G1,G2]  accept a bearer token (repeatable)
  --allow USER=VERBS:RESOURCES[:NAMESPACES]
                              restrict USER to these rules, e.g. viewer=get,list,watch:pods
  --seed FILE                 JSON object, array or List of objects to create at start
  --history N                 watch replay window in events (default 1000)
  --bookmark-interval-ms N    BOOKMARK period for allowWatchBookmarks (default 1000)
  --auto-create-namespaces    create a missing namespace instead of answering 404
Control endpoints (no auth): /fakeapi/faults/{drop-watches,expire-watch?count=,
  fail?count=&code=,watch-delay?ms=,truncate-watch,malformed-watch,reset},
  /fakeapi/{compact,restart?downtime_ms=,stats,tokens?token=&user=&groups=,
  allow?user=&verbs=&resources=&namespaces=,client-certificate?user=&groups=}
)";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

void seed(FakeApiServer& api, const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file);
  auto doc = nlohmann::json::parse(in);
  nlohmann::json items = doc.is_array() ? doc : doc.contains("items") ? doc["items"] : nlohmann::json::array({doc});
  for (auto& obj : items) {
    const auto& type = api.catalog().resolve(obj.value("kind", ""));
    api.create(type.qualified(), obj.value("/metadata/namespace"_json_pointer, std::string(type.namespaced ? "default" : "")), obj);
  }
}

}  // namespace

int main(int argc, char** argv) {
  FakeApiServer::Options options;
  options.start = false;
  std::vector<std::string> seeds;
  std::vector<std::pair<std::string, PolicyRule>> rules;
  bool custom_tokens = false;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        return argv[++i];
      };
      if (a == "-h" || a == "--help") {
        std::cout << kUsage;
        return 0;
      } else if (a == "--host") options.host = value();
      else if (a == "--port") options.port = static_cast<std::uint16_t>(std::stoi(value()));
      else if (a == "--http-port") {
        options.plain_http = true;
        options.http_port = static_cast<std::uint16_t>(std::stoi(value()));
      } else if (a == "--dir") options.dir = value();
      else if (a == "--history") options.history_window = std::stoul(value());
      else if (a == "--bookmark-interval-ms")
        options.bookmark_interval = std::chrono::milliseconds(std::stol(value()));
      else if (a == "--auto-create-namespaces") options.auto_create_namespaces = true;
      else if (a == "--seed") seeds.push_back(value());
      else if (a == "--token") {
        std::string v = value();
        auto eq = v.find('=');
        if (eq == std::string::npos) throw std::invalid_argument("--token wants TOKEN=USER[:GROUPS]");
        std::string user = v.substr(eq + 1), groups;
        if (auto c = user.find(':'); c != std::string::npos) {
          groups = user.substr(c + 1);
          user.resize(c);
        }
        if (!custom_tokens) options.tokens.erase(options.tokens.begin(), options.tokens.end());
        custom_tokens = true;
        options.tokens[v.substr(0, eq)] = {user, split(groups, ',')};
      } else if (a == "--allow") {
        std::string v = value();
        auto eq = v.find('=');
        auto parts = eq == std::string::npos ? std::vector<std::string>{} : split(v.substr(eq + 1), ':');
        if (parts.size() < 2) throw std::invalid_argument("--allow wants USER=VERBS:RESOURCES[:NAMESPACES]");
        PolicyRule rule;
        rule.verbs = split(parts[0], ',');
        rule.resources = split(parts[1], ',');
        if (parts.size() > 2) rule.namespaces = split(parts[2], ',');
        rules.emplace_back(v.substr(0, eq), rule);
      } else {
        throw std::invalid_argument("unknown flag " + a);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "podgauge-fakeapi: " << e.what() << "\n" << kUsage;
    return 2;
  }

  // Block the stop signals before any thread starts, then wait for them here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    FakeApiServer api(options);
    for (auto& [user, rule] : rules) api.allow(user, rule);
    for (const auto& file : seeds) seed(api, file);
    api.start();
    std::cout << "ca: " << api.ca_file().string() << "\n"
              << "kubeconfig-token: " << api.token_kubeconfig().string() << "\n"
              << "kubeconfig-cert: " << api.cert_kubeconfig().string() << "\n";
    if (options.plain_http) std::cout << "http: " << api.http_url() << "\n";
    std::cout << "listening on " << api.url() << std::endl;
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::cout << "podgauge-fakeapi: stopping on signal " << sig << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "podgauge-fakeapi: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
