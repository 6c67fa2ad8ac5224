#include "support/http.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

namespace podgauge::itest {

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

// "http://host:port/path?q" -> {"http://host:port", "/path?q"}
std::pair<std::string, std::string> split_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme))
    throw std::invalid_argument("only http:// URLs are supported: " + std::string(url));
  const auto slash = url.find('/', scheme.size());
  std::string origin(url.substr(0, slash));
  std::string target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  return {std::move(origin), std::move(target)};
}

void set_timeouts(httplib::Client& client, std::chrono::milliseconds connect,
                  std::chrono::milliseconds read) {
  auto split = [](std::chrono::milliseconds t) {
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(t);
    return std::pair<time_t, time_t>(
        s.count(), std::chrono::duration_cast<std::chrono::microseconds>(t - s).count());
  };
  client.set_connection_timeout(split(connect).first, split(connect).second);
  client.set_read_timeout(split(read).first, split(read).second);
  client.set_write_timeout(split(connect).first, split(connect).second);
}

}  // namespace

HttpResponse http_get(std::string_view url, std::chrono::milliseconds timeout) {
  const auto [origin, target] = split_url(url);
  httplib::Client client(origin);
  set_timeouts(client, timeout, timeout);

  HttpResponse response;
  auto result = client.Get(target);
  if (!result) {
    response.error = httplib::to_string(result.error());
    return response;
  }
  response.status = result->status;
  response.body = result->body;
  for (const auto& [k, v] : result->headers) response.headers.emplace(k, v);
  return response;
}

struct HttpLineStream::State {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::string> lines;
  std::string partial;
  int status = 0;
  bool ended = false;
  std::string error;
  std::atomic<bool> cancel{false};
  std::unique_ptr<httplib::Client> client;
  std::thread worker;
};

HttpLineStream::HttpLineStream(std::string url, std::chrono::milliseconds idle_timeout)
    : state_(std::make_shared<State>()) {
  auto [origin, target] = split_url(url);
  state_->client = std::make_unique<httplib::Client>(origin);
  set_timeouts(*state_->client, std::chrono::seconds(5), idle_timeout);
  state_->worker = std::thread([state = state_, target = std::move(target)] {
    auto result = state->client->Get(
        target,
        [&](const httplib::Response& response) {
          std::lock_guard lock(state->mutex);
          state->status = response.status;
          state->changed.notify_all();
          return !state->cancel.load();
        },
        [&](const char* data, std::size_t size) {
          std::lock_guard lock(state->mutex);
          for (std::size_t i = 0; i < size; ++i) {
            if (data[i] == '\n') {
              state->lines.push_back(std::exchange(state->partial, {}));
            } else {
              state->partial.push_back(data[i]);
            }
          }
          state->changed.notify_all();
          return !state->cancel.load();
        });
    std::lock_guard lock(state->mutex);
    if (!result && !state->cancel.load()) state->error = httplib::to_string(result.error());
    if (!state->partial.empty()) state->lines.push_back(std::exchange(state->partial, {}));
    state->ended = true;
    state->changed.notify_all();
  });
}

HttpLineStream::~HttpLineStream() {
  state_->cancel = true;
  // Client::stop() shuts the socket down; repeat in case the connection was still opening.
  for (int i = 0; i < 100; ++i) {
    state_->client->stop();
    std::unique_lock lock(state_->mutex);
    if (state_->changed.wait_for(lock, std::chrono::milliseconds(50),
                                 [&] { return state_->ended; }))
      break;
  }
  if (state_->worker.joinable()) state_->worker.join();
}

std::optional<std::string> HttpLineStream::read_line(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mutex);
  state_->changed.wait_for(lock, timeout, [&] { return !state_->lines.empty() || state_->ended; });
  if (state_->lines.empty()) return std::nullopt;
  std::string line = std::move(state_->lines.front());
  state_->lines.pop_front();
  return line;
}

int HttpLineStream::status() const {
  std::lock_guard lock(state_->mutex);
  return state_->status;
}

bool HttpLineStream::ended() const {
  std::lock_guard lock(state_->mutex);
  return state_->ended;
}

std::string HttpLineStream::error() const {
  std::lock_guard lock(state_->mutex);
  return state_->error;
}

bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace podgauge::itest
