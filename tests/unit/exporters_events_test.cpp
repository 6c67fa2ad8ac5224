#include <chrono>
#include <future>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "podgauge/exporters/event_json.h"
#include "podgauge/exporters/event_log.h"
#include "podgauge/exporters/event_stream.h"

namespace {

using namespace podgauge::exporters;
using podgauge::v1::Event;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

Event oom_event() {
  Event e;
  e.set_seq(7);
  e.set_time_unix_nano(1'796'005'470'123'456'789);  // 2026-11-30T02:24:30.123456789Z
  e.set_type("oom_kill");
  e.set_node("node-a");
  e.set_namespace_("prod");
  e.set_pod("api-7d9f");
  e.set_pod_uid("0b1e0f2a-1111-2222-3333-444455556666");
  e.set_container("app");
  e.set_container_id(std::string(64, 'a'));
  e.set_cgroup_id(12345);
  e.set_pid(4242);
  e.set_comm("java");
  e.set_cgroup("/kubepods.slice/x.scope");
  e.set_runtime("containerd");
  e.set_qos("burstable");
  auto* d = e.mutable_oom_kill();
  d->set_tgid(4240);
  d->set_memcg_id(999);
  d->set_rss_bytes(64'172'851);
  d->set_oom_score_adj(-997);
  d->set_memory_limit_bytes(67'108'864);
  d->set_memory_usage_bytes(67'100'000);
  return e;
}

bool same(const Event& a, const Event& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

TEST(EventJson, writes_fields_in_contract_order_with_flattened_detail) {
  EXPECT_EQ(to_json_line(oom_event()),
            R"({"seq":7,"time":"2026-11-30T02:24:30.123456789Z","type":"oom_kill","node":"node-a",)"
            R"("namespace":"prod","pod":"api-7d9f","pod_uid":"0b1e0f2a-1111-2222-3333-444455556666",)"
            R"("container":"app","container_id":")" + std::string(64, 'a') +
            R"(","cgroup_id":12345,"pid":4242,"comm":"java","cgroup":"/kubepods.slice/x.scope",)"
            R"("runtime":"containerd","qos":"burstable","tgid":4240,"memcg_id":999,)"
            R"("rss_bytes":64172851,"oom_score_adj":-997,"memory_limit_bytes":67108864,)"
            R"("memory_usage_bytes":67100000,"oom_constraint":"","memory_before":[],)" R"("working_set_peak_bytes":0,"memory_growth_bytes_per_second":0.0,"reclaim_stall_seconds":0.0,)" R"("memory_pressure_some_avg10":0.0,"memory_pressure_full_avg10":0.0,"memory_pressure_some_seconds":0.0})");
}

TEST(EventJson, always_writes_common_fields_even_when_empty) {
  Event e;
  const std::string line = to_json_line(e);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto j = nlohmann::json::parse(line);
  for (const char* key : {"seq", "time", "type", "node", "namespace", "pod", "pod_uid", "container",
                          "container_id", "cgroup_id", "pid", "comm", "cgroup", "runtime", "qos"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["time"], "1970-01-01T00:00:00.000000000Z");
}

TEST(EventJson, round_trips_through_from_json_line) {
  const Event e = oom_event();
  const Event back = from_json_line(to_json_line(e));
  EXPECT_TRUE(same(e, back)) << back.DebugString();
  Event extremes;
  extremes.set_seq(UINT64_MAX);
  extremes.set_cgroup_id(UINT64_MAX);
  extremes.set_pid(INT32_MIN);
  extremes.set_time_unix_nano(-1);
  extremes.set_comm("a\"b\\c\nd\te 日本");
  extremes.set_type("oom_kill");
  extremes.mutable_oom_kill()->set_rss_bytes(UINT64_MAX);
  EXPECT_TRUE(same(extremes, from_json_line(to_json_line(extremes))));
}

TEST(EventJson, round_trips_lists_of_flat_records_and_rejects_bad_ones) {
  Event e = oom_event();
  e.mutable_oom_kill()->set_oom_constraint("memcg");
  for (int i = 3; i >= 1; --i) {
    auto* p = e.mutable_oom_kill()->add_memory_before();
    p->set_offset_ms(-i * 1000);
    p->set_working_set_bytes(uint64_t(60 - i) << 20);
    p->set_limit_bytes(64ull << 20);
  }
  const std::string line = to_json_line(e);
  EXPECT_NE(line.find(R"({"offset_ms":-1000,"working_set_bytes":61865984,"limit_bytes":67108864}])"), std::string::npos)
      << line;
  const Event back = from_json_line(line);
  EXPECT_TRUE(same(e, back)) << back.DebugString();
  EXPECT_THROW(from_json_line(R"({"seq":1,"type":"oom_kill","memory_before":{"offset_ms":1}})"), EventJsonError);
  EXPECT_THROW(from_json_line(R"({"seq":1,"type":"oom_kill","memory_before":[1,2]})"), EventJsonError);
  EXPECT_THROW(from_json_line(R"({"seq":1,"type":"oom_kill","memory_before":[{"offset_ms":"x"}]})"), EventJsonError);
}

TEST(EventJson, ignores_unknown_keys_and_tolerates_missing_ones) {
  const Event e = from_json_line(R"({"seq":3,"type":"future_type","future_field":[1,2],"pod":"p"})");
  EXPECT_EQ(e.seq(), 3u);
  EXPECT_EQ(e.pod(), "p");
  EXPECT_EQ(e.detail_case(), Event::DETAIL_NOT_SET);
}

TEST(EventJson, rejects_malformed_lines_with_clear_errors) {
  auto error_of = [](std::string_view line) {
    try {
      from_json_line(line);
    } catch (const EventJsonError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error_of("{not json"), HasSubstr("invalid JSON event line"));
  EXPECT_THAT(error_of("[1,2]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(error_of("27e7322"), HasSubstr("invalid JSON event line"));  // found by fuzzing
  EXPECT_THAT(error_of(R"({"seq":-1})"), HasSubstr("\"seq\""));
  EXPECT_THAT(error_of(R"({"seq":"7"})"), HasSubstr("\"seq\""));
  EXPECT_THAT(error_of(R"({"pid":3000000000})"), HasSubstr("\"pid\""));
  EXPECT_THAT(error_of(R"({"pod":5})"), HasSubstr("\"pod\" must be a string"));
  EXPECT_THAT(error_of(R"({"time":"yesterday"})"), HasSubstr("invalid time"));
  EXPECT_THAT(error_of(R"({"type":"oom_kill","rss_bytes":1.5})"), HasSubstr("rss_bytes"));
}

TEST(EventJson, formats_and_parses_rfc3339) {
  EXPECT_EQ(format_rfc3339_nano(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(format_rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(format_rfc3339_nano(951'782'400'000'000'001), "2000-02-29T00:00:00.000000001Z");
  EXPECT_EQ(parse_rfc3339_nano("2026-11-30T02:24:30.123456789Z"), 1'796'005'470'123'456'789);
  EXPECT_EQ(parse_rfc3339_nano("2026-11-30T02:24:30Z"), 1'796'005'470'000'000'000);
  EXPECT_EQ(parse_rfc3339_nano("2026-11-30T03:24:30.5+01:00"), 1'796'005'470'500'000'000);
  EXPECT_THROW(parse_rfc3339_nano("2026-02-30T00:00:00Z"), EventJsonError);
  EXPECT_THROW(parse_rfc3339_nano("2026-11-30T02:24:30"), EventJsonError);
  EXPECT_THROW(parse_rfc3339_nano("2026-11-30T02:24:30.Z"), EventJsonError);
}

TEST(EventJson, survives_invalid_utf8_from_the_kernel) {
  Event e;
  e.set_comm(std::string("bad\xff\xfe", 5));  // the log fixes this; to_json_line must not throw
  std::string line;
  EXPECT_NO_THROW(line = to_json_line(e));
  EXPECT_NO_THROW(from_json_line(line));
}

// Details are flattened into the event object: their names must not shadow a common field.
TEST(EventSchema, detail_field_names_do_not_collide_with_common_fields) {
  const auto* event = Event::descriptor();
  const auto* oneof = event->FindOneofByName("detail");
  ASSERT_NE(oneof, nullptr);
  std::set<std::string> common{"time"};
  for (int i = 0; i < event->field_count(); ++i) {
    if (event->field(i)->containing_oneof() == nullptr) common.insert(event->field(i)->name());
  }
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto* detail = oneof->field(i)->message_type();
    for (int k = 0; k < detail->field_count(); ++k) {
      EXPECT_EQ(common.count(detail->field(k)->name()), 0u)
          << detail->full_name() << "." << detail->field(k)->name() << " collides";
    }
  }
}

std::vector<Event> sample_events(int n) {
  std::vector<Event> out;
  for (int i = 1; i <= n; ++i) {
    Event e = oom_event();
    e.set_seq(i);
    e.set_pod("pod-" + std::to_string(i));
    if (i % 3 == 0) e.clear_detail();
    out.push_back(e);
  }
  return out;
}

std::vector<Event> drain(DelimitedEventReader& r) {
  std::vector<Event> out;
  Event e;
  while (r.next(e)) out.push_back(e);
  return out;
}

TEST(EventStream, round_trips_when_fed_one_byte_at_a_time) {
  const auto events = sample_events(20);
  std::string wire;
  for (const auto& e : events) append_delimited(e, wire);
  DelimitedEventReader reader;
  std::vector<Event> got;
  for (char c : wire) {
    reader.feed(std::string_view(&c, 1));
    for (auto& e : drain(reader)) got.push_back(std::move(e));
  }
  ASSERT_EQ(got.size(), events.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same(got[i], events[i])) << i;
  EXPECT_FALSE(reader.mid_frame());
}

TEST(EventStream, round_trips_with_random_splits_and_keepalives) {
  const auto events = sample_events(300);
  std::string wire;
  for (const auto& e : events) {
    append_delimited(e, wire);
    if (e.seq() % 7 == 0) append_keepalive_frame(wire);
  }
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    DelimitedEventReader reader;
    std::vector<Event> got;
    for (std::size_t pos = 0; pos < wire.size();) {
      const std::size_t n = std::min<std::size_t>(wire.size() - pos, rng() % 700);
      reader.feed(std::string_view(wire).substr(pos, n));
      pos += n;
      for (auto& e : drain(reader)) got.push_back(std::move(e));
    }
    ASSERT_EQ(got.size(), events.size());
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_TRUE(same(got[i], events[i]));
  }
}

TEST(EventStream, matches_protobufs_own_delimited_framing) {
  const auto events = sample_events(5);
  std::string ours;
  for (const auto& e : events) append_delimited(e, ours);
  std::ostringstream theirs;
  for (const auto& e : events) {
    ASSERT_TRUE(google::protobuf::util::SerializeDelimitedToOstream(e, &theirs));
  }
  EXPECT_EQ(ours, theirs.str());
}

TEST(EventStream, rejects_oversized_frame_before_buffering_it) {
  DelimitedEventReader reader;
  reader.feed("\xff\xff\xff\x7f");  // ~268 MB
  Event e;
  try {
    reader.next(e);
    FAIL() << "expected an error";
  } catch (const EventStreamError& err) {
    EXPECT_THAT(err.what(), HasSubstr("exceeds the limit of 1048576"));
  }
  EXPECT_THROW(reader.next(e), EventStreamError);  // stays failed
}

TEST(EventStream, rejects_overlong_varint_and_garbage_message) {
  DelimitedEventReader a(std::numeric_limits<std::size_t>::max());
  a.feed(std::string(11, '\x80'));
  Event e;
  EXPECT_THROW(a.next(e), EventStreamError);

  DelimitedEventReader b;
  b.feed(std::string("\x03\xff\xff\xff", 4));  // invalid tag/wire type
  try {
    b.next(e);
    FAIL();
  } catch (const EventStreamError& err) {
    EXPECT_THAT(err.what(), HasSubstr("not a valid podgauge.v1.Event"));
  }
}

TEST(EventStream, reports_truncated_frame) {
  std::string wire;
  append_delimited(oom_event(), wire);
  DelimitedEventReader reader;
  reader.feed(std::string_view(wire).substr(0, wire.size() - 1));
  Event e;
  EXPECT_FALSE(reader.next(e));
  EXPECT_TRUE(reader.mid_frame());
}

TEST(EventLog, assigns_increasing_seq_from_one_and_a_time) {
  EventLog log;
  EXPECT_EQ(log.last_seq(), 0u);
  EXPECT_EQ(log.oldest_seq(), 1u);
  Event e;
  e.set_seq(999);  // replaced
  EXPECT_EQ(log.append(e), 1u);
  EXPECT_EQ(log.append(Event{}), 2u);
  const auto held = log.since(0);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].seq(), 1u);
  EXPECT_EQ(held[1].seq(), 2u);
  EXPECT_GT(held[0].time_unix_nano(), 1'700'000'000'000'000'000);
  Event timed;
  timed.set_time_unix_nano(5);
  log.append(timed);
  EXPECT_EQ(log.since(2)[0].time_unix_nano(), 5);
}

TEST(EventLog, keeps_only_capacity_newest_and_since_skips_evicted) {
  EventLog log(3);
  for (int i = 0; i < 5; ++i) log.append(Event{});
  EXPECT_EQ(log.size(), 3u);
  EXPECT_EQ(log.oldest_seq(), 3u);
  EXPECT_EQ(log.last_seq(), 5u);
  auto all = log.since(0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all.front().seq(), 3u);
  auto after3 = log.since(3);
  ASSERT_EQ(after3.size(), 2u);
  EXPECT_EQ(after3.front().seq(), 4u);
  EXPECT_EQ(log.since(3, 1).size(), 1u);
  EXPECT_TRUE(log.since(5).empty());
  EXPECT_TRUE(log.since(100).empty());
}

TEST(EventLog, makes_strings_valid_utf8) {
  EventLog log;
  Event e;
  e.set_comm(std::string("x\xff", 2));
  log.append(e);
  const Event held = log.since(0)[0];
  EXPECT_EQ(held.comm(), "x\xEF\xBF\xBD");
  std::string wire;
  append_delimited(held, wire);
  DelimitedEventReader r;
  r.feed(wire);
  Event back;
  EXPECT_TRUE(r.next(back));  // proto3 parsers reject invalid UTF-8 strings
}

TEST(EventLog, wait_for_after_wakes_on_append_and_on_close) {
  EventLog log;
  EXPECT_FALSE(log.wait_for_after(0, 10ms));
  auto waiter = std::async(std::launch::async, [&] { return log.wait_for_after(0, 10s); });
  std::this_thread::sleep_for(20ms);
  log.append(Event{});
  EXPECT_TRUE(waiter.get());
  EXPECT_TRUE(log.wait_for_after(0, 0ms));

  auto closed_waiter = std::async(std::launch::async, [&] { return log.wait_for_after(1, 10s); });
  std::this_thread::sleep_for(20ms);
  const auto t0 = std::chrono::steady_clock::now();
  log.close();
  EXPECT_FALSE(closed_waiter.get());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(log.closed());
  EXPECT_FALSE(log.wait_for_after(1, 10s));  // returns at once once closed
}

TEST(EventLog, wait_for_after_wakes_on_stop_request) {
  EventLog log;
  std::stop_source stop;
  auto waiter = std::async(std::launch::async, [&] { return log.wait_for_after(0, 10s, stop.get_token()); });
  std::this_thread::sleep_for(20ms);
  stop.request_stop();
  EXPECT_EQ(waiter.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(waiter.get());
}

TEST(EventLog, concurrent_appends_get_unique_contiguous_seqs) {
  EventLog log(1'000'000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) log.append(Event{});
    });
  }
  for (auto& t : threads) t.join();
  const auto all = log.since(0);
  ASSERT_EQ(all.size(), 4000u);
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq(), i + 1);
}

}  // namespace
