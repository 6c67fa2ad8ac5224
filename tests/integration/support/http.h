#pragma once
// Small HTTP and timing helpers for tests talking to the agent and to Prometheus (loopback).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace podgauge::itest {

struct HttpResponse {
  int status = 0;  // 0: no response (see error)
  std::string body;
  std::multimap<std::string, std::string> headers;
  std::string error;  // transport error, empty when a reply came

  bool ok() const { return status >= 200 && status < 300; }
  /// First value of a header (case-sensitive name as sent by the server), or "".
  std::string header(const std::string& name) const;
};

/// GET `url` ("http://127.0.0.1:9742/metrics"). Never throws on transport errors: a refused
/// connection or a timeout gives status 0 and `error`, which suits polling in wait_until.
/// Throws std::invalid_argument for a URL that is not http://host:port/...
HttpResponse http_get(std::string_view url,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// A streaming GET read line by line while it is still open, e.g. the agent's NDJSON
/// "/v1/events?follow=true". The request runs in a background thread from construction; the
/// destructor cancels it. Thread-safety: read_line/status/ended from any thread.
class HttpLineStream {
 public:
  /// `idle_timeout`: the stream ends when no byte arrives for this long.
  explicit HttpLineStream(std::string url,
                          std::chrono::milliseconds idle_timeout = std::chrono::seconds(60));
  ~HttpLineStream();
  HttpLineStream(const HttpLineStream&) = delete;
  HttpLineStream& operator=(const HttpLineStream&) = delete;

  /// The next complete line (without '\n'); nullopt on timeout or once the stream ended and
  /// every line was returned.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  /// HTTP status once the headers arrived, else 0.
  int status() const;
  /// True once the response ended (server closed, error, or cancelled); see error().
  bool ended() const;
  std::string error() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// Calls `predicate` every `poll` until it returns true (true) or `timeout` passes (false;
/// the predicate is evaluated one last time at the deadline).
bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(100));

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and released).
std::uint16_t free_loopback_port();

}  // namespace podgauge::itest
