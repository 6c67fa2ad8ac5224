#include "tail.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <httplib.h>

#include "agent_url.h"

#include "podgauge/exporters/event_json.h"
#include "podgauge/exporters/event_stream.h"

namespace podgauge::cli {

namespace {

namespace ex = podgauge::exporters;
using podgauge::v1::Event;
using namespace std::chrono_literals;

constexpr std::string_view kUsage = R"(Usage: podgauge tail --agent URL [flags]

Print the agent's events (OOM kills, limit breaches, ...) as they happen.

Flags:
      --agent URL          agent to read from, e.g. http://10.0.0.5:9742 (required for now;
                           cluster-wide tail through the API server is not implemented yet)
  -o, --output FORMAT      table (default) or json (one JSON object per line)
      --since SEQ          only events after this seq (default 0: every event the agent holds)
  -f, --follow[=BOOL]      keep streaming new events (default true); --follow=false prints the
                           held events and exits
      --type TYPE          only events of this type (repeatable or comma-separated),
                           e.g. oom_kill, breach_start, eviction_risk
  -h, --help               show this help
)";

struct TailOptions {
  std::string agent;
  bool json = false;
  std::uint64_t since = 0;
  bool follow = true;
  std::set<std::string, std::less<>> types;
};

struct UsageError {
  std::string message;
};

bool parse_bool(std::string_view v, bool& out) {
  if (v == "true" || v == "1") out = true;
  else if (v == "false" || v == "0") out = false;
  else return false;
  return true;
}

// Returns nullopt after printing help.
std::optional<TailOptions> parse_args(int argc, char** argv, std::ostream& out) {
  TailOptions o;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::optional<std::string_view> inline_value;
    if (arg.starts_with("--")) {
      if (auto eq = arg.find('='); eq != std::string_view::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    } else if (arg.starts_with("-o") && arg.size() > 2) {
      inline_value = arg.substr(2);
      arg = "-o";
    }
    auto value = [&]() -> std::string_view {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) throw UsageError{std::string(arg) + " needs a value"};
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      out << kUsage;
      return std::nullopt;
    } else if (arg == "--agent") {
      o.agent = value();
    } else if (arg == "-o" || arg == "--output") {
      const std::string_view v = value();
      if (v == "json") o.json = true;
      else if (v == "table") o.json = false;
      else throw UsageError{"unsupported output \"" + std::string(v) + "\" for tail: use table or json"};
    } else if (arg == "--since") {
      const std::string_view v = value();
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), o.since);
      if (v.empty() || ec != std::errc{} || p != v.data() + v.size())
        throw UsageError{"--since wants an event seq (a non-negative integer), got \"" + std::string(v) + "\""};
    } else if (arg == "-f" || arg == "--follow") {
      if (inline_value && !parse_bool(*inline_value, o.follow))
        throw UsageError{"--follow wants true or false, got \"" + std::string(*inline_value) + "\""};
      if (!inline_value) o.follow = true;
    } else if (arg == "--type") {
      std::string_view v = value();
      while (!v.empty()) {
        const auto comma = v.find(',');
        const std::string_view t = v.substr(0, comma);
        if (!t.empty()) o.types.emplace(t);
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
    } else {
      throw UsageError{"unknown flag \"" + std::string(argv[i]) + "\""};
    }
  }
  if (o.agent.empty()) {
    throw UsageError{
        "--agent URL is required: cluster-wide tail (through the API server) is not implemented "
        "yet; point it at one agent, e.g. --agent http://127.0.0.1:9742"};
  }
  return o;
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  if (bytes < 1024) return std::to_string(bytes) + "B";
  double v = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (v >= 1024 && unit < 5) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s = buf;
  if (s.ends_with(".0")) s.resize(s.size() - 2);
  return s + kUnits[unit];
}

// Generic `name=value` for detail types without a hand-written summary.
std::string generic_details(const google::protobuf::Message& detail) {
  namespace pb = google::protobuf;
  const pb::Descriptor& d = *detail.GetDescriptor();
  const pb::Reflection& r = *detail.GetReflection();
  std::string out;
  for (int i = 0; i < d.field_count(); ++i) {
    const pb::FieldDescriptor& f = *d.field(i);
    if (f.is_repeated()) continue;
    std::string name = f.name();
    std::string value;
    switch (f.cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32: value = std::to_string(r.GetInt32(detail, &f)); break;
      case pb::FieldDescriptor::CPPTYPE_INT64: value = std::to_string(r.GetInt64(detail, &f)); break;
      case pb::FieldDescriptor::CPPTYPE_UINT32: value = std::to_string(r.GetUInt32(detail, &f)); break;
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        if (name.ends_with("_bytes")) {
          name.resize(name.size() - 6);
          value = format_bytes(r.GetUInt64(detail, &f));
        } else {
          value = std::to_string(r.GetUInt64(detail, &f));
        }
        break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", r.GetDouble(detail, &f));
        value = buf;
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_FLOAT: value = std::to_string(r.GetFloat(detail, &f)); break;
      case pb::FieldDescriptor::CPPTYPE_BOOL: value = r.GetBool(detail, &f) ? "true" : "false"; break;
      case pb::FieldDescriptor::CPPTYPE_ENUM: value = r.GetEnum(detail, &f)->name(); break;
      case pb::FieldDescriptor::CPPTYPE_STRING: value = r.GetString(detail, &f); break;
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: continue;
    }
    if (value.empty() || value == "0") continue;
    if (!out.empty()) out += ' ';
    out += name + "=" + value;
  }
  return out;
}

std::string sigabbrev_np_or_num(int sig) {
  const char* name = sigabbrev_np(sig);
  return name ? std::string("SIG") + name : std::to_string(sig);
}

std::string details_of(const Event& e) {
  if (e.has_oom_kill()) {
    const auto& d = e.oom_kill();
    std::string s = "rss=" + format_bytes(d.rss_bytes());
    s += " limit=" + (d.memory_limit_bytes() ? format_bytes(d.memory_limit_bytes()) : "none");
    if (d.memory_usage_bytes()) s += " usage=" + format_bytes(d.memory_usage_bytes());
    if (d.oom_score_adj()) s += " oom_score_adj=" + std::to_string(d.oom_score_adj());
    if (!d.oom_constraint().empty()) s += " constraint=" + d.oom_constraint();
    if (d.working_set_peak_bytes()) s += " working_set_peak_60s=" + format_bytes(d.working_set_peak_bytes());
    return s;
  }
  if (e.has_process_exit()) {
    // An exit code of 0 is news too (a main process that finished), so it is always shown.
    const auto& d = e.process_exit();
    std::string s = d.signal() ? "signal=" + std::to_string(d.signal()) + " (" + sigabbrev_np_or_num(d.signal()) + ")"
                               : "exit_code=" + std::to_string(d.exit_code());
    if (d.core_dumped()) s += " core_dumped";
    if (d.is_container_main()) s += " main";
    char cpu[32];
    std::snprintf(cpu, sizeof cpu, " cpu=%.3fs", d.cpu_seconds());
    return s + cpu;
  }
  const auto* reflection = e.GetReflection();
  const auto* oneof = Event::descriptor()->FindOneofByName("detail");
  if (const auto* f = reflection->GetOneofFieldDescriptor(e, oneof)) {
    return generic_details(reflection->GetMessage(e, f));
  }
  return "";
}

// kubectl-style columns. Widths only grow, so live rows stay aligned with the header unless a
// value is longer than anything seen before.
class EventTable {
 public:
  void print(const Event& e, std::ostream& out) {
    std::string time = ex::format_rfc3339_nano(e.time_unix_nano());
    time = time.substr(0, 19) + "Z";  // second precision is enough to read
    auto or_none = [](const std::string& s) { return s.empty() ? std::string("<none>") : s; };
    const std::vector<std::string> row{time,
                                       or_none(e.type()),
                                       or_none(e.node()),
                                       or_none(e.namespace_()),
                                       or_none(e.pod()),
                                       or_none(e.container()),
                                       e.pid() ? std::to_string(e.pid()) : "-",
                                       or_none(e.comm()),
                                       details_of(e)};
    if (!header_printed_) {
      write_row({"TIME", "TYPE", "NODE", "NAMESPACE", "POD", "CONTAINER", "PID", "COMM", "DETAILS"}, out);
      header_printed_ = true;
    }
    write_row(row, out);
  }

 private:
  void write_row(const std::vector<std::string>& cells, std::ostream& out) {
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      line += cells[i];
      if (i + 1 == cells.size()) break;
      widths_[i] = std::max(widths_[i], cells[i].size());
      line.append(widths_[i] - cells[i].size() + 3, ' ');
    }
    out << line << '\n';
  }

  bool header_printed_ = false;
  std::size_t widths_[8] = {20, 12, 10, 10, 20, 10, 7, 15};
};

class Tail {
 public:
  Tail(TailOptions options, AgentUrl url, std::ostream& out, std::ostream& err, std::stop_token stop)
      : o_(std::move(options)), url_(std::move(url)), out_(out), err_(err), stop_(std::move(stop)),
        cursor_(o_.since), accounted_(o_.since) {}

  int run();

 private:
  enum class Outcome { done, retry, restart, fail, stop };
  Outcome attempt(std::string& why);
  bool handle(const Event& e);  // false when stdout is gone
  void sleep_interruptibly(std::chrono::milliseconds d);

  TailOptions o_;
  AgentUrl url_;
  std::ostream& out_;
  std::ostream& err_;
  std::stop_token stop_;
  std::uint64_t cursor_;     // last seq received; the next request asks for since=cursor_
  std::uint64_t accounted_;  // last seq received or reported lost (gap detection)
  EventTable table_;
  std::size_t printed_ = 0;
  bool output_closed_ = false;
  bool retrying_ = false;   // an outage was reported and not yet resolved
  bool connected_ = false;  // the last attempt got a 200 response

  std::mutex client_mutex_;
  httplib::Client* client_ = nullptr;  // the in-flight request's client, for stopping it
};

bool Tail::handle(const Event& e) {
  if (accounted_ != 0 && e.seq() > accounted_ + 1) {
    err_ << "podgauge tail: warning: " << e.seq() - accounted_ - 1 << " events (seq "
         << accounted_ + 1 << ".." << e.seq() - 1
         << ") were dropped from the agent's log before they could be read" << std::endl;
  }
  accounted_ = std::max(accounted_, e.seq());
  cursor_ = std::max(cursor_, e.seq());
  if (!o_.types.empty() && !o_.types.contains(e.type())) return true;
  if (o_.json) out_ << ex::to_json_line(e) << '\n';
  else table_.print(e, out_);
  out_.flush();  // live output: `podgauge tail | grep` must see each event now
  ++printed_;
  return static_cast<bool>(out_);
}

Tail::Outcome Tail::attempt(std::string& why) {
  httplib::Client client(url_.origin);
  if (!client.is_valid()) {
    why = "invalid agent URL " + url_.origin;
    return Outcome::fail;
  }
  client.set_connection_timeout(3, 0);
  // The agent sends a keep-alive at least every 10 s while following; silence for longer than
  // this means the connection is dead.
  client.set_read_timeout(o_.follow ? 35 : 30, 0);
  {
    std::lock_guard lock(client_mutex_);
    if (stop_.stop_requested()) return Outcome::stop;
    client_ = &client;
  }
  struct Unregister {
    Tail& t;
    ~Unregister() {
      std::lock_guard lock(t.client_mutex_);
      t.client_ = nullptr;
    }
  } unregister{*this};

  const std::string path = url_.base_path + "/v1/events?follow=" + (o_.follow ? "true" : "false") +
                           "&since=" + std::to_string(cursor_);
  const httplib::Headers headers{{"Accept", std::string(ex::kProtobufStreamContentType)}};
  ex::DelimitedEventReader reader;
  int status = 0;
  bool agent_restarted = false;
  std::string error_body, stream_error;
  Event event;
  auto result = client.Get(
      path, headers,
      [&](const httplib::Response& res) {
        status = res.status;
        if (status != 200) return true;
        const auto oldest = std::strtoull(res.get_header_value("X-Podgauge-Oldest-Seq").c_str(), nullptr, 10);
        const auto last = std::strtoull(res.get_header_value("X-Podgauge-Last-Seq").c_str(), nullptr, 10);
        if (res.has_header("X-Podgauge-Last-Seq") && last < cursor_) {
          agent_restarted = true;  // a new agent process: its seqs start again at 1
          return false;
        }
        connected_ = true;
        if (retrying_) {
          err_ << "podgauge tail: reconnected to the agent; resuming after seq " << cursor_ << std::endl;
          retrying_ = false;
        }
        if (accounted_ != 0 && oldest > accounted_ + 1) {
          err_ << "podgauge tail: warning: " << oldest - accounted_ - 1 << " events (seq "
               << accounted_ + 1 << ".." << oldest - 1
               << ") were dropped from the agent's log before they could be read" << std::endl;
          accounted_ = oldest - 1;
        }
        return true;
      },
      [&](const char* data, std::size_t len) {
        if (stop_.stop_requested()) return false;
        if (status != 200) {
          if (error_body.size() < 4096) error_body.append(data, std::min<std::size_t>(len, 4096));
          return true;
        }
        reader.feed(std::string_view(data, len));
        try {
          while (reader.next(event)) {
            if (!handle(event)) {
              output_closed_ = true;
              return false;
            }
          }
        } catch (const ex::EventStreamError& e) {
          stream_error = e.what();
          return false;
        }
        return true;
      });

  if (stop_.stop_requested() || output_closed_) return Outcome::stop;
  if (agent_restarted) {
    err_ << "podgauge tail: the agent restarted (its event log begins again at seq 1); "
            "continuing from its oldest event"
         << std::endl;
    cursor_ = accounted_ = 0;
    return Outcome::restart;
  }
  if (!stream_error.empty()) {
    why = stream_error;
    return Outcome::fail;
  }
  if (status != 0 && status != 200) {
    while (!error_body.empty() && (error_body.back() == '\n' || error_body.back() == '\r')) error_body.pop_back();
    why = "agent answered HTTP " + std::to_string(status) + (error_body.empty() ? "" : ": " + error_body);
    // 503 = the agent is starting or busy; anything else will not fix itself.
    return status == 503 && o_.follow ? Outcome::retry : Outcome::fail;
  }
  if (result) {
    if (reader.mid_frame()) {
      why = "the stream ended inside an event";
      return o_.follow ? Outcome::retry : Outcome::fail;
    }
    if (!o_.follow) return Outcome::done;
    why = "the agent closed the stream (shutting down?)";
    return Outcome::retry;
  }
  why = status == 0 ? "cannot connect to agent at " + url_.origin + url_.base_path + ": " +
                          httplib::to_string(result.error())
                    : "connection to agent at " + url_.origin + url_.base_path + " lost after seq " +
                          std::to_string(cursor_) + ": " + httplib::to_string(result.error());
  return o_.follow ? Outcome::retry : Outcome::fail;
}

void Tail::sleep_interruptibly(std::chrono::milliseconds d) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, stop_, d, [] { return false; });
}

int Tail::run() {
  std::stop_callback on_stop(stop_, [this] {
    std::lock_guard lock(client_mutex_);
    if (client_ != nullptr) client_->stop();  // unblocks a read waiting for the next event
  });
  std::mt19937 rng(std::random_device{}());
  auto backoff = 100ms;
  while (true) {
    connected_ = false;
    std::string why;
    switch (attempt(why)) {
      case Outcome::done:
        if (printed_ == 0 && !o_.json) {
          err_ << "No events" << (o_.types.empty() ? "" : " of the requested types")
               << " held by the agent after seq " << o_.since << "." << std::endl;
        }
        return 0;
      case Outcome::stop:
        return 0;
      case Outcome::fail:
        err_ << "podgauge tail: " << why << std::endl;
        return 1;
      case Outcome::restart:
        backoff = 100ms;
        continue;
      case Outcome::retry:
        break;
    }
    if (connected_) backoff = 100ms;  // the agent is up; this was a disconnect, not an outage
    if (!retrying_) {
      err_ << "podgauge tail: " << why << "; retrying (Ctrl-C to stop)" << std::endl;
      retrying_ = true;
    }
    // Jitter spreads the reconnects of many tails after an agent restart.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    sleep_interruptibly(std::chrono::milliseconds(static_cast<long>(backoff.count() * jitter(rng))));
    if (stop_.stop_requested()) return 0;
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
  }
}

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) { g_interrupted.store(true); }

}  // namespace

int tail_main(int argc, char** argv, std::ostream& out, std::ostream& err, std::stop_token stop) {
  std::optional<TailOptions> options;
  AgentUrl url;
  try {
    options = parse_args(argc, argv, out);
    if (!options) return 0;
    url = parse_agent_url(options->agent);
  } catch (const UsageError& e) {
    err << "podgauge tail: " << e.message << "\nRun 'podgauge tail --help' for usage." << std::endl;
    return 2;
  } catch (const AgentUrlError& e) {
    err << "podgauge tail: " << e.what() << "\nRun 'podgauge tail --help' for usage." << std::endl;
    return 2;
  }
  return Tail(std::move(*options), std::move(url), out, err, std::move(stop)).run();
}

int tail_main(int argc, char** argv, std::ostream& out, std::ostream& err) {
  // A closed stdout or agent socket must show up as a write error, not kill the process.
  struct sigaction ignore {}, interrupt {}, old_pipe {}, old_int {}, old_term {};
  ignore.sa_handler = SIG_IGN;
  interrupt.sa_handler = on_interrupt;
  sigemptyset(&interrupt.sa_mask);
  ::sigaction(SIGPIPE, &ignore, &old_pipe);
  ::sigaction(SIGINT, &interrupt, &old_int);
  ::sigaction(SIGTERM, &interrupt, &old_term);
  g_interrupted = false;

  std::stop_source stop;
  std::jthread watcher([&stop](std::stop_token done) {
    while (!done.stop_requested()) {
      if (g_interrupted.load()) {
        stop.request_stop();
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
  });
  const int rc = tail_main(argc, argv, out, err, stop.get_token());
  watcher.request_stop();
  watcher.join();
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return rc;
}

}  // namespace podgauge::cli
