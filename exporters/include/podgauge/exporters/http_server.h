#pragma once
// The agent's HTTP endpoints: /metrics, /healthz, /readyz, /v1/summary, /v1/events and extra
// JSON query routes for the CLI.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "podgauge/exporters/event_log.h"

namespace httplib {
struct Request;
}

namespace podgauge::exporters {

/// The listen address cannot be used; what() says why and what to do.
class ListenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ListenAddress {
  std::string host;  // IPv4/IPv6 literal or name, without brackets
  int port = 0;      // 0 = any free port
  /// host:port, with [brackets] around an IPv6 host.
  std::string to_string() const;
};

/// Parses "host:port", "[v6addr]:port" or ":port" (= 0.0.0.0). Throws std::invalid_argument.
ListenAddress parse_listen_address(std::string_view spec);

/// Fails early, before slow start-up work, when `listen` cannot be bound (taken port,
/// privileged port, unknown address): throws ListenError with what to do. Port 0 passes.
void check_listen_address(std::string_view listen);

struct Readiness {
  bool ready = true;
  std::string reason;  // why not ready; sent as the 503 body
};

struct AgentHttpHandlers {
  std::function<std::string()> metrics = {};     // the whole /metrics page (exposition 0.0.4)
  std::function<Readiness()> readiness = {};     // unset = always ready
  std::function<nlohmann::json()> summary = {};  // /v1/summary; unset = {}
};

struct AgentHttpOptions {
  /// Idle followers get a keep-alive frame (NDJSON: an empty line) this often, so dead clients
  /// are noticed and clients can tell a silent agent from a dead connection.
  std::chrono::milliseconds heartbeat_interval{10'000};
  /// Concurrent `follow=true` streams; each holds a worker thread. Beyond this: 503.
  std::size_t max_followers = 8;
};

/// Serves the agent's endpoints on cpp-httplib worker threads.
/// Thread-safe: handlers run concurrently on server threads; call add_json_route(), start() and
/// stop() from one controlling thread.
class AgentHttpServer {
 public:
  /// A JSON GET route: return the body; throw std::invalid_argument for a 400 (bad query),
  /// anything else for a 500.
  using JsonRoute = std::function<nlohmann::json(const httplib::Request&)>;

  /// `listen` as for parse_listen_address (throws std::invalid_argument). Nothing is bound yet.
  AgentHttpServer(std::string_view listen, EventLog& events, AgentHttpHandlers handlers,
                  AgentHttpOptions options = {});
  ~AgentHttpServer();  // stop()
  AgentHttpServer(const AgentHttpServer&) = delete;
  AgentHttpServer& operator=(const AgentHttpServer&) = delete;

  /// Adds GET `path` (exact match). Only before start().
  void add_json_route(std::string path, JsonRoute route);

  /// Binds (throws ListenError with an actionable message) and serves in background threads.
  /// Ignores SIGPIPE process-wide: a client hanging up must not kill the agent.
  void start();
  /// Stops accepting, ends follow streams and joins the threads. Returns within about a second
  /// even with followers or idle keep-alive clients connected. Idempotent. Does not close the
  /// EventLog, so a new server can serve the same log.
  void stop();

  bool running() const;
  /// The port actually bound (useful with port 0); -1 before start().
  int bound_port() const;
  const ListenAddress& listen_address() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podgauge::exporters
