#include "tail.h"

#include <chrono>
#include <mutex>
#include <sstream>
#include <streambuf>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "podgauge/exporters/event_json.h"
#include "podgauge/exporters/event_log.h"
#include "podgauge/exporters/http_server.h"

namespace {

using namespace podgauge::exporters;
using podgauge::cli::tail_main;
using podgauge::v1::Event;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

Event oom(const std::string& pod, const std::string& type = "oom_kill") {
  Event e;
  e.set_type(type);
  e.set_node("node-a");
  e.set_namespace_("prod");
  e.set_pod(pod);
  e.set_container("app");
  e.set_pid(4242);
  e.set_comm("java");
  if (type == "oom_kill") {
    e.mutable_oom_kill()->set_rss_bytes(64'172'851);
    e.mutable_oom_kill()->set_memory_limit_bytes(64 << 20);
  }
  return e;
}

// An ostream the tail thread writes while the test reads.
class SyncBuf : public std::streambuf {
 public:
  std::string str() {
    std::lock_guard lock(mutex_);
    return text_;
  }

 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) {
      std::lock_guard lock(mutex_);
      text_.push_back(static_cast<char>(c));
    }
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard lock(mutex_);
    text_.append(s, static_cast<std::size_t>(n));
    return n;
  }

 private:
  std::mutex mutex_;
  std::string text_;
};

struct TailRun {
  std::vector<std::string> args;
  int rc = -1;
  std::string out, err;
};

TailRun run_tail(std::vector<std::string> args) {
  TailRun r;
  r.args = std::move(args);
  std::vector<char*> argv;
  for (auto& a : r.args) argv.push_back(a.data());
  std::ostringstream out, err;
  r.rc = tail_main(static_cast<int>(argv.size()), argv.data(), out, err, std::stop_token{});
  r.out = out.str();
  r.err = err.str();
  return r;
}

// `podgauge tail --follow` on a thread, stopped by the test.
class FollowingTail {
 public:
  explicit FollowingTail(std::vector<std::string> args) : args_(std::move(args)) {
    thread_ = std::thread([this] {
      std::vector<char*> argv;
      for (auto& a : args_) argv.push_back(a.data());
      std::ostream out(&out_buf_), err(&err_buf_);
      rc_ = tail_main(static_cast<int>(argv.size()), argv.data(), out, err, stop_.get_token());
    });
  }
  ~FollowingTail() { stop(); }
  int stop() {
    stop_.request_stop();
    if (thread_.joinable()) thread_.join();
    return rc_;
  }
  bool wait_for_output(const std::string& needle, std::chrono::seconds timeout = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (out_buf_.str().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::string out() { return out_buf_.str(); }
  std::string err() { return err_buf_.str(); }

 private:
  std::vector<std::string> args_;
  SyncBuf out_buf_, err_buf_;
  std::stop_source stop_;
  int rc_ = -1;
  std::thread thread_;
};

class TailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<AgentHttpServer>("127.0.0.1:0", log_, AgentHttpHandlers{});
    server_->start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->bound_port()); }

  EventLog log_;
  std::unique_ptr<AgentHttpServer> server_;
};

TEST_F(TailTest, json_output_is_exactly_the_ndjson_lines) {
  std::string expected;
  for (int i = 0; i < 4; ++i) log_.append(oom("pod-" + std::to_string(i)));
  for (const auto& e : log_.since(0)) expected += to_json_line(e) + "\n";
  const auto r = run_tail({"--agent", url(), "-o", "json", "--follow=false"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, expected);
  EXPECT_EQ(r.err, "");
}

TEST_F(TailTest, since_skips_events_already_seen) {
  for (int i = 0; i < 4; ++i) log_.append(oom("pod-" + std::to_string(i)));
  const auto r = run_tail({"--agent=" + url(), "-ojson", "--follow=false", "--since", "2"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, to_json_line(log_.since(2)[0]) + "\n" + to_json_line(log_.since(3)[0]) + "\n");
}

TEST_F(TailTest, table_output_has_header_pod_and_details) {
  log_.append(oom("checkout-7d9f"));
  const auto r = run_tail({"--agent", url(), "--follow=false"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("TIME"));
  EXPECT_THAT(r.out, HasSubstr("NAMESPACE"));
  EXPECT_THAT(r.out, HasSubstr("DETAILS"));
  EXPECT_THAT(r.out, HasSubstr("checkout-7d9f"));
  EXPECT_THAT(r.out, HasSubstr("rss=61.2Mi limit=64Mi"));
  // Header and row columns line up.
  std::istringstream lines(r.out);
  std::string header, row;
  std::getline(lines, header);
  std::getline(lines, row);
  EXPECT_EQ(header.find("POD"), row.find("checkout-7d9f"));
}

TEST_F(TailTest, process_exits_show_code_or_signal_in_the_table) {
  Event code = oom("batch-1", "process_exit");
  auto* d = code.mutable_process_exit();
  d->set_exit_code(0);
  d->set_is_container_main(true);
  d->set_cpu_seconds(1.5);
  Event killed = oom("batch-2", "process_exit");
  killed.mutable_process_exit()->set_signal(9);
  log_.append(code);
  log_.append(killed);
  const auto r = run_tail({"--agent", url(), "--follow=false"});
  EXPECT_EQ(r.rc, 0) << r.err;
  // A clean exit of a main process is news too: exit_code=0 is printed, not dropped.
  EXPECT_THAT(r.out, HasSubstr("exit_code=0 main cpu=1.500s"));
  EXPECT_THAT(r.out, HasSubstr("signal=9 (SIGKILL)"));
}

TEST_F(TailTest, type_filter_keeps_only_requested_types) {
  log_.append(oom("a"));
  log_.append(oom("b", "breach_start"));
  log_.append(oom("c"));
  const auto r = run_tail({"--agent", url(), "-o", "json", "--follow=false", "--type", "oom_kill"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"pod\":\"a\""));
  EXPECT_THAT(r.out, HasSubstr("\"pod\":\"c\""));
  EXPECT_THAT(r.out, Not(HasSubstr("\"pod\":\"b\"")));
}

TEST_F(TailTest, follow_prints_events_appended_later) {
  log_.append(oom("early"));
  FollowingTail tail({"--agent", url(), "-o", "json"});
  ASSERT_TRUE(tail.wait_for_output("\"early\"")) << tail.err();
  log_.append(oom("late"));
  ASSERT_TRUE(tail.wait_for_output("\"late\"")) << tail.err();
  EXPECT_EQ(tail.stop(), 0);
  EXPECT_EQ(tail.out(), to_json_line(log_.since(0)[0]) + "\n" + to_json_line(log_.since(1)[0]) + "\n");
}

TEST_F(TailTest, agent_restart_mid_follow_loses_and_duplicates_nothing) {
  const int port = server_->bound_port();
  log_.append(oom("e1"));
  FollowingTail tail({"--agent", url(), "-o", "json"});
  ASSERT_TRUE(tail.wait_for_output("\"e1\"")) << tail.err();
  server_->stop();
  log_.append(oom("e2"));  // while no server is listening
  log_.append(oom("e3"));
  std::this_thread::sleep_for(300ms);  // let the tail notice and back off
  server_ = std::make_unique<AgentHttpServer>("127.0.0.1:" + std::to_string(port), log_, AgentHttpHandlers{});
  server_->start();
  log_.append(oom("e4"));
  ASSERT_TRUE(tail.wait_for_output("\"e4\"")) << tail.err();
  EXPECT_EQ(tail.stop(), 0);
  std::string expected;
  for (const auto& e : log_.since(0)) expected += to_json_line(e) + "\n";
  EXPECT_EQ(tail.out(), expected);
  EXPECT_THAT(tail.err(), HasSubstr("retrying"));
}

TEST_F(TailTest, warns_when_events_were_dropped_before_reading) {
  EventLog small(2);
  AgentHttpServer server("127.0.0.1:0", small, {});
  server.start();
  for (int i = 0; i < 6; ++i) small.append(oom("p" + std::to_string(i)));
  const auto r = run_tail({"--agent", "http://127.0.0.1:" + std::to_string(server.bound_port()),
                           "-o", "json", "--follow=false", "--since", "1"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_THAT(r.err, HasSubstr("3 events (seq 2..4) were dropped"));
}

TEST(TailCli, unreachable_agent_without_follow_fails_clearly) {
  // Bind then release a port so nothing listens on it.
  int port;
  {
    EventLog log;
    AgentHttpServer s("127.0.0.1:0", log, {});
    s.start();
    port = s.bound_port();
  }
  const auto r = run_tail({"--agent", "http://127.0.0.1:" + std::to_string(port), "--follow=false"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot connect to agent at http://127.0.0.1:" + std::to_string(port)));
}

TEST(TailCli, usage_errors_exit_2_with_a_hint) {
  auto r = run_tail({});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("--agent URL is required"));
  EXPECT_THAT(r.err, HasSubstr("not implemented yet"));
  r = run_tail({"--agent", "http://x:1", "-o", "yaml"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("use table or json"));
  r = run_tail({"--agent", "x:1"});
  EXPECT_EQ(r.rc, 2);
  r = run_tail({"--bogus"});
  EXPECT_EQ(r.rc, 2);
  r = run_tail({"--help"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_THAT(r.out, HasSubstr("Usage: podgauge tail"));
}

}  // namespace
