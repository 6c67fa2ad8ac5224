// A small HTTP(S) client for the Kubernetes API: bearer tokens or client certificates, CA
// verification, typed errors, and line-by-line streaming for watches.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "podgauge/k8s/kubeconfig.h"
#include "podgauge/k8s/list.h"

namespace podgauge::k8s {

enum class ApiErrorKind : std::uint8_t {
  Unreachable,   ///< no HTTP response: connect/TLS/read failure
  Unauthorized,  ///< 401
  Forbidden,     ///< 403
  NotFound,      ///< 404
  Gone,          ///< 410: resource version too old, re-list
  ServerError,   ///< 5xx (and 429): retry with backoff
  Other,         ///< any other non-2xx
};

/// A failed request. what() names the method, URL and what to check.
class ApiError : public std::runtime_error {
 public:
  ApiError(ApiErrorKind kind, int http_status, Status status, const std::string& message)
      : std::runtime_error(message),
        kind_(kind),
        http_status_(http_status),
        status_(std::move(status)) {}
  ApiErrorKind kind() const noexcept { return kind_; }
  int http_status() const noexcept { return http_status_; }  ///< 0 when unreachable
  /// The server's Status body, when it sent one.
  const Status& status() const noexcept { return status_; }
  bool retryable() const noexcept {
    return kind_ == ApiErrorKind::Unreachable || kind_ == ApiErrorKind::ServerError;
  }

 private:
  ApiErrorKind kind_;
  int http_status_;
  Status status_;
};

/// Splits a byte stream into lines (without '\n'); a line split across chunks is joined.
/// Thread-safety: none; one stream per splitter.
class LineSplitter {
 public:
  /// Calls `on_line` for each complete line in `chunk`; stops early (returning false) when
  /// on_line returns false.
  bool feed(std::string_view chunk, const std::function<bool(std::string_view)>& on_line);
  /// The incomplete tail kept for the next chunk.
  const std::string& pending() const noexcept { return pending_; }

 private:
  std::string pending_;
};

struct ApiClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{30000};  ///< per request; a watch's is set per call
  std::string user_agent = "podgauge";
};

/// Thread-safety: every method may be called from any thread; each request uses its own
/// connection, and cancel_streams() ends the watches open at the time.
class ApiClient {
 public:
  explicit ApiClient(RestConfig config, ApiClientOptions options = {});
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  /// `path` is the API path with query ("/api/v1/pods?limit=500"). Returns the 2xx body;
  /// throws ApiError.
  std::string get(const std::string& path);
  std::string post(const std::string& path, const std::string& body,
                   const std::string& content_type = "application/json");
  std::string patch(const std::string& path, const std::string& body,
                    const std::string& content_type = "application/merge-patch+json");

  /// GET that streams: `on_line` gets each complete line as chunks arrive; return false from
  /// it to stop. Returns when the server ends the stream, on_line stops it, or `stop` becomes
  /// true (checked at each chunk and every `read_timeout` of silence). Throws ApiError for a
  /// non-2xx answer or a broken connection (not for a stop).
  void stream(const std::string& path, const std::function<bool(std::string_view)>& on_line,
              const std::atomic<bool>* stop = nullptr,
              std::chrono::milliseconds read_timeout = std::chrono::seconds(60));
  /// Shuts down the sockets of the streams open now with this `stop` flag (all streams when
  /// nullptr); a stream whose flag is set returns without error.
  void cancel_streams(const std::atomic<bool>* stop = nullptr);

  const RestConfig& config() const noexcept { return config_; }

  struct Impl;  // detail

 private:
  RestConfig config_;
  ApiClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

/// Percent-encodes a query value (selectors, continue tokens, resource versions).
std::string url_escape(std::string_view text);

}  // namespace podgauge::k8s
