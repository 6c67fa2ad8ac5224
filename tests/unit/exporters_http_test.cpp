#include "podgauge/exporters/http_server.h"

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "podgauge/exporters/event_json.h"
#include "podgauge/exporters/event_stream.h"

namespace {

using namespace podgauge::exporters;
using podgauge::v1::Event;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

Event pod_event(const std::string& pod) {
  Event e;
  e.set_type("oom_kill");
  e.set_node("node-a");
  e.set_namespace_("prod");
  e.set_pod(pod);
  e.mutable_oom_kill()->set_rss_bytes(1 << 20);
  return e;
}

std::vector<std::string> lines_of(const std::string& body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t nl; (nl = body.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.push_back(body.substr(start, nl - start));
  }
  EXPECT_EQ(start, body.size()) << "body must end with a newline";
  return out;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(AgentHttpHandlers handlers = {}, AgentHttpOptions options = {}) {
    server_ = std::make_unique<AgentHttpServer>("127.0.0.1:0", log_, std::move(handlers), options);
    server_->add_json_route("/v1/echo", [](const httplib::Request& req) {
      if (!req.has_param("x")) throw std::invalid_argument("missing x");
      return nlohmann::json{{"x", req.get_param_value("x")}};
    });
    server_->start();
    ASSERT_GT(server_->bound_port(), 0);
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->bound_port());
    c.set_read_timeout(10, 0);
    return c;
  }

  EventLog log_;
  std::unique_ptr<AgentHttpServer> server_;
};

TEST_F(HttpServerTest, serves_metrics_with_exposition_content_type) {
  start({.metrics = [] { return std::string("# TYPE up gauge\nup 1\n"); }});
  auto res = client().Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(res->body, "# TYPE up gauge\nup 1\n");
}

TEST_F(HttpServerTest, healthz_summary_json_routes_and_404) {
  start({.summary = [] { return nlohmann::json{{"node", "node-a"}}; }});
  auto c = client();
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");
  auto summary = c.Get("/v1/summary");
  ASSERT_TRUE(summary);
  EXPECT_EQ(nlohmann::json::parse(summary->body)["node"], "node-a");
  EXPECT_EQ(summary->get_header_value("Content-Type"), "application/json");
  auto echo = c.Get("/v1/echo?x=42");
  ASSERT_TRUE(echo);
  EXPECT_EQ(nlohmann::json::parse(echo->body)["x"], "42");
  auto bad = c.Get("/v1/echo");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("missing x"));
  auto missing = c.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_THAT(missing->body, HasSubstr("not found: /nope"));
}

TEST_F(HttpServerTest, readyz_reports_503_with_reason_then_200) {
  std::atomic<bool> ready{false};
  start({.readiness = [&] { return Readiness{ready.load(), "BPF programs not loaded yet"}; }});
  auto c = client();
  auto before = c.Get("/readyz");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 503);
  EXPECT_THAT(before->body, HasSubstr("BPF programs not loaded yet"));
  ready = true;
  auto after = c.Get("/readyz");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST_F(HttpServerTest, events_without_follow_returns_held_events_as_ndjson) {
  start();
  std::vector<std::string> expected;
  for (int i = 0; i < 5; ++i) log_.append(pod_event("p" + std::to_string(i)));
  for (const auto& e : log_.since(0)) expected.push_back(to_json_line(e));
  auto res = client().Get("/v1/events?follow=false");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/x-ndjson");
  EXPECT_EQ(res->get_header_value("X-Podgauge-Oldest-Seq"), "1");
  EXPECT_EQ(lines_of(res->body), expected);
}

TEST_F(HttpServerTest, since_resumes_without_loss_or_duplication) {
  start();
  for (int i = 0; i < 10; ++i) log_.append(pod_event("p" + std::to_string(i)));
  auto first = client().Get("/v1/events?since=0&follow=false");
  ASSERT_TRUE(first);
  const auto first_lines = lines_of(first->body);
  ASSERT_EQ(first_lines.size(), 10u);
  const std::uint64_t last = from_json_line(first_lines.back()).seq();
  for (int i = 0; i < 3; ++i) log_.append(pod_event("late" + std::to_string(i)));
  auto second = client().Get("/v1/events?since=" + std::to_string(last) + "&follow=false");
  ASSERT_TRUE(second);
  const auto lines = lines_of(second->body);
  ASSERT_EQ(lines.size(), 3u);
  for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(from_json_line(lines[i]).seq(), last + 1 + i);
}

TEST_F(HttpServerTest, oldest_seq_header_reveals_evicted_events) {
  EventLog small(2);
  server_ = std::make_unique<AgentHttpServer>("127.0.0.1:0", small, AgentHttpHandlers{});
  server_->start();
  for (int i = 0; i < 5; ++i) small.append(pod_event("p"));
  auto res = client().Get("/v1/events?since=1&follow=false");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("X-Podgauge-Oldest-Seq"), "4");
  EXPECT_EQ(lines_of(res->body).size(), 2u);
}

TEST_F(HttpServerTest, bad_query_is_400_with_message) {
  start();
  auto res = client().Get("/v1/events?since=abc");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_THAT(res->body, HasSubstr("invalid since=abc"));
  auto neg = client().Get("/v1/events?since=-1");
  ASSERT_TRUE(neg);
  EXPECT_EQ(neg->status, 400);
  auto follow = client().Get("/v1/events?follow=maybe");
  ASSERT_TRUE(follow);
  EXPECT_EQ(follow->status, 400);
}

TEST_F(HttpServerTest, serves_length_delimited_protobuf_when_accept_asks) {
  start();
  for (int i = 0; i < 3; ++i) log_.append(pod_event("p" + std::to_string(i)));
  auto res = client().Get("/v1/events?follow=false", {{"Accept", "application/x-protobuf"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/x-protobuf");
  DelimitedEventReader reader;
  reader.feed(res->body);
  Event e;
  std::vector<std::uint64_t> seqs;
  while (reader.next(e)) seqs.push_back(e.seq());
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_FALSE(reader.mid_frame());
}

// Reads a follow stream on a thread; the test appends events and waits for them to arrive.
class Follower {
 public:
  Follower(int port, std::string path) : client_("127.0.0.1", port) {
    thread_ = std::thread([this, path] {
      httplib::Client& c = client_;
      c.set_read_timeout(20, 0);
      result_ = c.Get(
          path,
          [this](const httplib::Response& res) {
            std::lock_guard lock(mutex_);
            status_ = res.status;
            return true;
          },
          [this](const char* data, std::size_t len) {
            std::lock_guard lock(mutex_);
            body_.append(data, len);
            return !done_;
          })
                    ? 1
                    : 0;
    });
  }
  ~Follower() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    client_.stop();  // unblock a read waiting for the next event
    if (thread_.joinable()) thread_.join();
  }
  bool wait_for(const std::function<bool(const std::string&, int)>& pred, std::chrono::seconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        if (pred(body_, status_)) return true;
      }
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  std::string body() {
    std::lock_guard lock(mutex_);
    return body_;
  }
  void join() { thread_.join(); }

 private:
  std::mutex mutex_;
  std::string body_;
  int status_ = 0;
  bool done_ = false;
  int result_ = 0;
  httplib::Client client_;
  std::thread thread_;
};

TEST_F(HttpServerTest, follow_streams_held_then_new_events) {
  start();
  log_.append(pod_event("before"));
  Follower f(server_->bound_port(), "/v1/events?follow=true&since=0");
  ASSERT_TRUE(f.wait_for([](const std::string& body, int status) {
    return status == 200 && body.find("\"before\"") != std::string::npos;
  }));
  log_.append(pod_event("after-connect"));
  ASSERT_TRUE(f.wait_for([](const std::string& body, int) {
    return body.find("\"after-connect\"") != std::string::npos;
  }));
  const auto lines = lines_of(f.body());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(from_json_line(lines[1]).seq(), 2u);
}

TEST_F(HttpServerTest, follow_sends_keepalives_while_idle) {
  start({}, {.heartbeat_interval = 50ms});
  Follower f(server_->bound_port(), "/v1/events?follow=true");
  EXPECT_TRUE(f.wait_for([](const std::string& body, int) { return body.size() >= 2; }));
  EXPECT_EQ(f.body().find_first_not_of('\n'), std::string::npos);  // only empty lines so far
}

TEST_F(HttpServerTest, stop_returns_promptly_with_followers_connected) {
  start();
  std::vector<std::unique_ptr<Follower>> followers;
  for (int i = 0; i < 3; ++i) {
    followers.push_back(std::make_unique<Follower>(server_->bound_port(), "/v1/events?follow=true"));
    ASSERT_TRUE(followers.back()->wait_for([](const std::string&, int status) { return status == 200; }));
  }
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_FALSE(server_->running());
  EXPECT_FALSE(log_.closed());  // the log outlives the server
}

TEST_F(HttpServerTest, limits_concurrent_followers_with_503) {
  start({}, {.max_followers = 1});
  Follower first(server_->bound_port(), "/v1/events?follow=true");
  ASSERT_TRUE(first.wait_for([](const std::string&, int status) { return status == 200; }));
  auto res = client().Get("/v1/events?follow=true");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_THAT(res->body, HasSubstr("too many follow streams"));
}

TEST_F(HttpServerTest, port_already_taken_is_a_clear_error) {
  start();
  const std::string taken = "127.0.0.1:" + std::to_string(server_->bound_port());
  AgentHttpServer second(taken, log_, {});
  try {
    second.start();
    FAIL() << "second server bound a port already in use";
  } catch (const ListenError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on " + taken +
                                         ": address already in use — another podgauge agent? "
                                         "choose another with --listen");
  }
}

TEST(ListenAddress, parses_ipv4_ipv6_and_port_only) {
  EXPECT_EQ(parse_listen_address("0.0.0.0:9742").host, "0.0.0.0");
  EXPECT_EQ(parse_listen_address("0.0.0.0:9742").port, 9742);
  EXPECT_EQ(parse_listen_address("[::1]:0").host, "::1");
  EXPECT_EQ(parse_listen_address("[::1]:0").to_string(), "[::1]:0");
  EXPECT_EQ(parse_listen_address(":9742").host, "0.0.0.0");
  EXPECT_THROW(parse_listen_address("9742"), std::invalid_argument);
  EXPECT_THROW(parse_listen_address("::1:9742"), std::invalid_argument);
  EXPECT_THROW(parse_listen_address("host:99999"), std::invalid_argument);
  EXPECT_THROW(parse_listen_address("host:"), std::invalid_argument);
}

TEST(AgentHttpServerIpv6, listens_on_ipv6_loopback) {
  EventLog log;
  AgentHttpServer server("[::1]:0", log, {});
  try {
    server.start();
  } catch (const ListenError& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  httplib::Client c("::1", server.bound_port());
  auto res = c.Get("/healthz");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
}

}  // namespace
