#include "podgauge/exporters/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include <httplib.h>

#include "podgauge/exporters/event_json.h"
#include "podgauge/exporters/event_stream.h"
#include "podgauge/exporters/exposition.h"

namespace podgauge::exporters {

namespace {

constexpr std::size_t kEventBatch = 256;
constexpr std::string_view kPlainText = "text/plain; charset=utf-8";

std::string regex_escape(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (std::strchr(".^$|()[]{}*+?\\", c) != nullptr) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// httplib reports only "bind failed"; redo the bind on a scratch socket to learn errno.
// nullopt when the scratch bind works.
std::optional<std::string> bind_problem(const ListenAddress& addr) {
  const std::string where = "cannot listen on " + addr.to_string() + ": ";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(addr.port);
  if (int rc = ::getaddrinfo(addr.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return where + "cannot resolve \"" + addr.host + "\" (" + ::gai_strerror(rc) +
           ") — use an IP address such as 0.0.0.0 or [::1] in --listen";
  }
  int err = 0;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    err = ::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 1) == 0 ? 0 : errno;
    ::close(fd);
    if (err == 0) break;
  }
  ::freeaddrinfo(found);
  switch (err) {
    case EADDRINUSE:
      return where + "address already in use — another podgauge agent? choose another with --listen";
    case EACCES:
      return where + "permission denied — ports below 1024 need root or CAP_NET_BIND_SERVICE; "
                     "choose another with --listen";
    case EADDRNOTAVAIL:
      return where + "address not available — no interface of this host has that IP; "
                     "use 0.0.0.0, [::] or one of this host's addresses in --listen";
    case 0:
      return std::nullopt;
    default:
      return where + std::strerror(err);
  }
}

std::string describe_bind_failure(const ListenAddress& addr) {
  return bind_problem(addr).value_or("cannot listen on " + addr.to_string() +
                                     ": bind failed (the address may have been in use for a "
                                     "moment); retry or choose another with --listen");
}

void ignore_sigpipe() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);
  }
}

}  // namespace

std::string ListenAddress::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ListenAddress parse_listen_address(std::string_view spec) {
  auto bad = [&](const char* why) {
    return std::invalid_argument("invalid listen address \"" + std::string(spec) + "\": " + why +
                                 " (want host:port, [ipv6]:port or :port, e.g. 0.0.0.0:9742)");
  };
  ListenAddress out;
  std::string_view port;
  if (spec.starts_with('[')) {
    const auto close = spec.find(']');
    if (close == std::string_view::npos || close + 1 >= spec.size() || spec[close + 1] != ':')
      throw bad("missing \"]:port\"");
    out.host = std::string(spec.substr(1, close - 1));
    port = spec.substr(close + 2);
  } else {
    const auto colon = spec.rfind(':');
    if (colon == std::string_view::npos) throw bad("missing \":port\"");
    out.host = std::string(spec.substr(0, colon));
    if (out.host.find(':') != std::string::npos) throw bad("IPv6 addresses need [brackets]");
    port = spec.substr(colon + 1);
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (port.empty() || ec != std::errc{} || ptr != port.data() + port.size() || out.port < 0 ||
      out.port > 65535)
    throw bad("port must be a number from 0 to 65535");
  return out;
}

struct AgentHttpServer::Impl {
  Impl(std::string_view listen, EventLog& log, AgentHttpHandlers h, AgentHttpOptions o)
      : address(parse_listen_address(listen)), events(log), handlers(std::move(h)), options(o) {}

  void install_routes();
  void serve_events(const httplib::Request& req, httplib::Response& res);

  ListenAddress address;
  EventLog& events;
  AgentHttpHandlers handlers;
  AgentHttpOptions options;
  std::vector<std::pair<std::string, JsonRoute>> json_routes;

  std::unique_ptr<httplib::Server> server;
  std::thread listener;
  std::atomic<bool> listener_done{false};
  std::stop_source stopping;
  std::atomic<std::size_t> followers{0};
  int port = -1;
};

void AgentHttpServer::Impl::install_routes() {
  httplib::Server& svr = *server;
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    if (!handlers.metrics) {
      res.status = 503;
      res.set_content("metrics are not available yet\n", std::string(kPlainText));
      return;
    }
    res.set_content(handlers.metrics(), std::string(kExpositionContentType));
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", std::string(kPlainText));
  });
  svr.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const Readiness r = handlers.readiness ? handlers.readiness() : Readiness{};
    if (r.ready) {
      res.set_content("ok", std::string(kPlainText));
    } else {
      res.status = 503;
      res.set_content("not ready: " + (r.reason.empty() ? std::string("starting") : r.reason) + "\n",
                      std::string(kPlainText));
    }
  });
  svr.Get("/v1/summary", [this](const httplib::Request&, httplib::Response& res) {
    const nlohmann::json body = handlers.summary ? handlers.summary() : nlohmann::json::object();
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  });
  svr.Get("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    serve_events(req, res);
  });
  for (auto& entry : json_routes) {
    const JsonRoute& route = entry.second;
    svr.Get(regex_escape(entry.first), [&route](const httplib::Request& req, httplib::Response& res) {
      try {
        res.set_content(route(req).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                        "application/json");
      } catch (const std::invalid_argument& e) {
        res.status = 400;
        res.set_content(nlohmann::json{{"error", e.what()}}.dump(), "application/json");
      }
    });
  }
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content("internal error: " + what + "\n", std::string(kPlainText));
  });
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.status != 404) return httplib::Server::HandlerResponse::Unhandled;
    res.set_content("not found: " + req.path +
                        " (endpoints: /metrics /healthz /readyz /v1/summary /v1/events)\n",
                    std::string(kPlainText));
    return httplib::Server::HandlerResponse::Handled;
  }));
}

void AgentHttpServer::Impl::serve_events(const httplib::Request& req, httplib::Response& res) {
  auto reject = [&](std::string message) {
    res.status = 400;
    res.set_content(std::move(message) + "\n", std::string(kPlainText));
  };
  std::uint64_t since = 0;
  if (req.has_param("since")) {
    const std::string v = req.get_param_value("since");
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), since);
    if (v.empty() || ec != std::errc{} || ptr != v.data() + v.size())
      return reject("invalid since=" + v +
                    ": want a non-negative integer, the seq of the last event already seen");
  }
  bool follow = false;
  if (req.has_param("follow")) {
    const std::string v = req.get_param_value("follow");
    if (v == "true" || v == "1" || v.empty()) follow = true;
    else if (v == "false" || v == "0") follow = false;
    else return reject("invalid follow=" + v + ": want true or false");
  }
  const bool protobuf =
      req.get_header_value("Accept").find(kProtobufStreamContentType) != std::string::npos;

  if (follow && followers.fetch_add(1) >= options.max_followers) {
    followers.fetch_sub(1);
    res.status = 503;
    res.set_content("too many follow streams (limit " + std::to_string(options.max_followers) +
                        "); retry later\n",
                    std::string(kPlainText));
    return;
  }
  res.set_header("X-Podgauge-Oldest-Seq", std::to_string(events.oldest_seq()));
  res.set_header("X-Podgauge-Last-Seq", std::to_string(events.last_seq()));

  struct Cursor {
    std::uint64_t after;
    std::uint64_t end;  // non-follow: stop after this seq
    std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
    std::string buffer;
  };
  auto cursor = std::make_shared<Cursor>();
  cursor->after = since;
  cursor->end = events.last_seq();
  const std::stop_token stop = stopping.get_token();
  res.set_chunked_content_provider(
      std::string(protobuf ? kProtobufStreamContentType : kNdjsonContentType),
      [this, cursor, follow, protobuf, stop](std::size_t, httplib::DataSink& sink) {
        std::vector<podgauge::v1::Event> batch = events.since(cursor->after, kEventBatch);
        if (!follow) {
          while (!batch.empty() && batch.back().seq() > cursor->end) batch.pop_back();
        }
        if (!batch.empty()) {
          std::string& buf = cursor->buffer;
          buf.clear();
          for (const auto& e : batch) {
            if (protobuf) {
              append_delimited(e, buf);
            } else {
              buf += to_json_line(e);
              buf += '\n';
            }
          }
          cursor->after = batch.back().seq();
          if (!sink.write(buf.data(), buf.size())) return false;
          cursor->last_write = std::chrono::steady_clock::now();
        }
        if (!follow) {
          if (batch.empty() || cursor->after >= cursor->end) sink.done();
          return true;
        }
        if (!batch.empty()) return true;
        // Short waits keep stop() prompt even if the stop callback races with this wait.
        const auto wait = std::min<std::chrono::milliseconds>(options.heartbeat_interval,
                                                              std::chrono::milliseconds(250));
        if (events.wait_for_after(cursor->after, wait, stop)) return true;
        if (stop.stop_requested() || events.closed()) {
          sink.done();
          return true;
        }
        if (std::chrono::steady_clock::now() - cursor->last_write >= options.heartbeat_interval) {
          std::string beat;
          if (protobuf) append_keepalive_frame(beat);
          else beat = "\n";
          if (!sink.write(beat.data(), beat.size())) return false;
          cursor->last_write = std::chrono::steady_clock::now();
        }
        return true;
      },
      [this, follow](bool) {
        if (follow) followers.fetch_sub(1);
      });
}

AgentHttpServer::AgentHttpServer(std::string_view listen, EventLog& events,
                                 AgentHttpHandlers handlers, AgentHttpOptions options)
    : impl_(std::make_unique<Impl>(listen, events, std::move(handlers), options)) {}

AgentHttpServer::~AgentHttpServer() { stop(); }

void AgentHttpServer::add_json_route(std::string path, JsonRoute route) {
  if (impl_->server) throw std::logic_error("add_json_route(" + path + ") after start()");
  if (!path.starts_with('/')) throw std::invalid_argument("route path must start with /: " + path);
  impl_->json_routes.emplace_back(std::move(path), std::move(route));
}

void AgentHttpServer::start() {
  Impl& im = *impl_;
  if (im.server) throw std::logic_error("AgentHttpServer::start() called twice");
  ignore_sigpipe();
  im.stopping = std::stop_source{};
  im.listener_done = false;
  im.server = std::make_unique<httplib::Server>();
  httplib::Server& svr = *im.server;
  // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second agent share the port.
  svr.set_socket_options([](socket_t fd) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // Followers each hold a worker; keep room for scrapes and probes beside them.
  const std::size_t workers = im.options.max_followers + 4;  // + scrapes, summary, queries
  svr.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  // Idle keep-alive connections hold a worker until this passes, which bounds stop() time.
  svr.set_keep_alive_timeout(1);
  im.install_routes();

  if (im.address.port == 0) {
    im.port = svr.bind_to_any_port(im.address.host);
  } else {
    im.port = svr.bind_to_port(im.address.host, im.address.port) ? im.address.port : -1;
  }
  if (im.port < 0) {
    im.server.reset();
    throw ListenError(describe_bind_failure(im.address));
  }
  im.listener = std::thread([&im] {
    im.server->listen_after_bind();
    im.listener_done = true;
  });
  // httplib::Server::stop() is a no-op until the accept loop runs; wait so stop() never hangs.
  while (!svr.is_running() && !im.listener_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void AgentHttpServer::stop() {
  Impl& im = *impl_;
  if (!im.server) return;
  im.stopping.request_stop();
  im.server->stop();
  if (im.listener.joinable()) im.listener.join();
  im.server.reset();
  im.port = -1;
}

bool AgentHttpServer::running() const { return impl_->server && impl_->server->is_running(); }

int AgentHttpServer::bound_port() const { return impl_->port; }

const ListenAddress& AgentHttpServer::listen_address() const { return impl_->address; }

void check_listen_address(std::string_view listen) {
  const ListenAddress addr = parse_listen_address(listen);
  if (addr.port == 0) return;
  if (auto problem = bind_problem(addr)) throw ListenError(*problem);
}

}  // namespace podgauge::exporters
