// The direct Pod decoder of watch events (pod_direct.cpp) against the tape decoder it stands in
// for: on the fixtures of every Kubernetes version it must take the event and build the same
// Pod; on broken or unusual input it must leave the event to the tape decoder, so that
// WatchEvent<Pod>::parse accepts, refuses and words errors exactly as before.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "podgauge/k8s/error.h"
#include "podgauge/k8s/list.h"
#include "podgauge/k8s/pod.h"
#include "podgauge/k8s/pod_direct.h"
#include "unit/k8s_pod_text.h"
#include "k8s_fixture.h"

using podgauge::k8s::Pod;
using podgauge::k8s::WatchEvent;
using podgauge::k8s::WatchEventType;
namespace pod_direct = podgauge::k8s::pod_direct;
using podgauge::k8s::testing::event_text;

namespace {

using podgauge::k8s::testing::fixture;

const char* const kPodFixtures[] = {"pod-1.19-classic.json", "pod-1.29-sidecar.json",
                                    "pod-1.32-pod-level-resources.json", "pod-1.33-resize.json"};

// The outcome of the tape decoder: the event as text, or the error's message.
std::string tape(const std::string& line, bool& ok) {
  try {
    const auto ev = pod_direct::parse_watch_event_with_tape(line);
    ok = true;
    return event_text(ev);
  } catch (const podgauge::k8s::JsonSyntaxError& e) {
    ok = false;
    return std::string("syntax: ") + e.what();
  } catch (const podgauge::k8s::ObjectError& e) {
    ok = false;
    return std::string("object: ") + e.what();
  }
}

// The direct decoder never accepts what the tape decoder refuses, and agrees when both accept;
// WatchEvent<Pod>::parse gives the tape decoder's outcome in every case. Returns whether the
// direct decoder took the line.
bool check_agrees(const std::string& line) {
  bool tape_ok = false;
  const std::string want = tape(line, tape_ok);
  const auto direct = pod_direct::decode_watch_event(line);
  if (direct) {
    EXPECT_TRUE(tape_ok) << "direct accepted what the tape decoder refuses (" << want
                         << "): " << line;
    if (tape_ok) {
      EXPECT_EQ(event_text(*direct), want) << line;
    }
  }
  bool parse_ok = false;
  std::string got;
  try {
    got = event_text(WatchEvent<Pod>::parse(line));
    parse_ok = true;
  } catch (const podgauge::k8s::JsonSyntaxError& e) {
    got = std::string("syntax: ") + e.what();
  } catch (const podgauge::k8s::ObjectError& e) {
    got = std::string("object: ") + e.what();
  }
  EXPECT_EQ(parse_ok, tape_ok) << line;
  EXPECT_EQ(got, want) << line;
  return direct.has_value();
}

std::string event(const std::string& type, const std::string& object) {
  return R"({"type":")" + type + R"(","object":)" + object + "}";
}

}  // namespace

TEST(K8sPodDirect, takes_and_matches_the_pod_fixtures_of_every_version) {
  for (const char* name : kPodFixtures) {
    SCOPED_TRACE(name);
    const std::string pod = fixture(name);
    for (const char* type : {"ADDED", "MODIFIED", "DELETED"}) {
      EXPECT_TRUE(check_agrees(event(type, pod)))
          << "the direct decoder left a plain " << type << " event";
    }
    const auto ev = pod_direct::decode_watch_event(event("MODIFIED", pod));
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->type, WatchEventType::Modified);
    EXPECT_EQ(ev->resource_version, ev->object->metadata.resource_version);
    EXPECT_FALSE(ev->object->metadata.name.empty());
  }
  // Fields the profiler relies on, read by the direct decoder itself.
  const auto ev = pod_direct::decode_watch_event(event("ADDED", fixture("pod-1.19-classic.json")));
  ASSERT_TRUE(ev);
  const Pod& pod = *ev->object;
  const Pod reference = Pod::parse(fixture("pod-1.19-classic.json"));
  EXPECT_EQ(pod.metadata.uid, reference.metadata.uid);
  EXPECT_EQ(pod.spec.containers.size(), reference.spec.containers.size());
  EXPECT_EQ(pod.status.container_statuses.size(), reference.status.container_statuses.size());
  EXPECT_EQ(pod.spec.containers.capacity(), pod.spec.containers.size());
  EXPECT_EQ(pod.status.conditions.capacity(), pod.status.conditions.size());
}

TEST(K8sPodDirect, watch_stream_fixture_lines_decode_as_the_tape_decoder_does) {
  std::istringstream lines(fixture("watch-pods.ndjson"));
  int taken = 0;
  int left = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    (check_agrees(line) ? taken : left)++;
  }
  EXPECT_EQ(taken, 3);  // ADDED, MODIFIED, DELETED
  EXPECT_EQ(left, 2);   // BOOKMARK and ERROR are the tape decoder's
}

// Shapes the direct decoder leaves to the tape decoder, or must read exactly as it does.
TEST(K8sPodDirect, unusual_but_valid_shapes_give_the_tape_decoders_result) {
  const std::string pod = fixture("pod-1.29-sidecar.json");
  const std::string small =
      R"({"metadata":{"name":"a","namespace":"n","resourceVersion":"7","labels":{"x":"1","x":"2","ab":"q\u00e9\"\n"},)"
      R"("annotations":null,"ownerReferences":[null,{"kind":"ReplicaSet","name":"r","controller":true}]},)"
      R"("spec":{"containers":[{"name":"c","restartPolicy":null,"resources":{"requests":{"cpu":null,"memory":"1Gi"},)"
      R"("limits":{"cpu":2,"memory":" 1e3 "}}}],"priority":null,"resources":null,"overhead":{"cpu":"10m"}},)"
      R"("status":{"qosClass":"","containerStatuses":[{"name":"c","started":null,"state":{"waiting":null,)"
      R"("terminated":{"exitCode":-1,"signal":9,"reason":"OOMKilled"}},"resources":null}]}})";
  const std::vector<std::string> lines = {
      R"({"object":)" + pod + R"(,"type":"MODIFIED"})",     // object first
      " \n" + event("ADDED", pod) + " \r\n",                // surrounding whitespace
      R"({"type" : "ADDED" , "object" : )" + small + " }",  // spaced tokens
      event("ADDED", small),                                // nulls, repeats, escapes
      R"({"type":"MODIFIED","object":)" + pod + R"(,"object":)" + small + "}",  // repeated object
      R"({"type":"MODIFIED","object":null,"object":)" + small + "}",
      R"({"type":"BOOKMARK","type":"ADDED","object":)" + small + "}",
      R"({"ty\u0070e":"ADDED","object":)" + small + "}",  // escaped key
      R"({"type":"ADD\u0045D","object":)" + small + "}",  // escaped value
      R"({"type":"ADDED","extra":{"env":[1 2],"x":[{"y":null}]},"object":)" + small + "}",
      R"({"type":"ADDED","object":)" + small + R"(,"env":[1 2]})",  // unread subtree, lenient
      event("ADDED", R"({"metadata":{"name":"a","labels":{"a\"b":"c"}}})"),  // escaped label key
      event("ADDED",
            R"({"metadata":{"name":"a","labels":{"env":{"a":1}}}})"),  // unread key as a label
  };
  for (const auto& line : lines) {
    SCOPED_TRACE(line.substr(0, 80));
    check_agrees(line);
  }
  EXPECT_TRUE(pod_direct::decode_watch_event(lines[0]));
  EXPECT_TRUE(pod_direct::decode_watch_event(lines[2]));
  EXPECT_TRUE(pod_direct::decode_watch_event(lines[3]));
  EXPECT_FALSE(pod_direct::decode_watch_event(lines[7]));
}

TEST(K8sPodDirect, refuses_what_the_tape_decoder_refuses) {
  const std::string small =
      R"({"metadata":{"name":"a","uid":"u"},"spec":{"containers":[{"name":"c"}]}})";
  const std::vector<std::string> bad = {
      event("ADDED", R"({"metadata":{"namespace":"x"}})"),  // no name
      event("ADDED",
            R"({"metadata":{"name":"a"},"spec":{"containers":[{"image":"x"}]}})"),  // no container
                                                                                    // name
      event("ADDED", R"({"metadata":{"name":"a"},"status":{"qosClass":"Gold"}})"),
      event("ADDED", R"({"metadata":{"name":"a","creationTimestamp":"yesterday"}})"),
      event("ADDED", R"({"metadata":{"name":"a"},"spec":{"priority":1.5}})"),
      event("ADDED", R"({"metadata":{"name":"a"},"spec":{"priority":4294967296}})"),
      event(
          "ADDED",
          R"({"metadata":{"name":"a"},"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"2x"}}}]}})"),
      event("ADDED", R"({"metadata":{"name":"a","labels":{"k":1}}})"),
      event("ADDED", R"({"metadata":{"name":7}})"),
      event("NOPE", small),
      R"({"type":"ADDED"})",
      event("ADDED", small) + "x",
      event("ADDED", small) + "{}",
      event("ADDED", R"({"metadata":{"name":"a","x":[1,]}})"),
      event("ADDED", R"({"metadata":{"name":"a","x":"\q"}})"),
      event("ADDED", R"({"metadata":{"name":"a","x":01}})"),
      event("ADDED", R"({"metadata":{"name":"a","x":tru}})"),
      event("ADDED", R"({"metadata":{"name":"a","env":["x"}}})"),
      event("ADDED", std::string(R"({"metadata":{"name":"a","x":)") + std::string(600, '[') +
                         std::string(600, ']') + "}}"),
  };
  for (const auto& line : bad) {
    SCOPED_TRACE(line.substr(0, 120));
    bool ok = true;
    tape(line, ok);
    EXPECT_FALSE(ok) << "the tape decoder should refuse this";
    EXPECT_FALSE(pod_direct::decode_watch_event(line));
    check_agrees(line);
  }
}

// Every prefix of a realistic event is refused by both; the whole is taken and matches.
TEST(K8sPodDirect, an_event_cut_at_every_byte_is_refused) {
  const std::string line = event("MODIFIED", fixture("pod-1.19-classic.json"));
  ASSERT_TRUE(check_agrees(line));
  for (std::size_t cut = 0; cut < line.size(); ++cut) {
    const std::string part = line.substr(0, cut);
    EXPECT_FALSE(pod_direct::decode_watch_event(part)) << cut;
    EXPECT_ANY_THROW(WatchEvent<Pod>::parse(part)) << cut;
    if (HasFailure()) break;
  }
}

// Random edits of the fixtures (bytes replaced by JSON-significant ones, inserted, removed):
// the two decoders agree on every one of them, and both outcomes occur often.
TEST(K8sPodDirect, randomly_edited_events_decode_as_the_tape_decoder_does) {
  const char significant[] = "{}[]\",:\\ 0-1.eE tfn\x01uA";
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int taken = 0;
  int refused = 0;
  for (const char* name : kPodFixtures) {
    const std::string base = event("MODIFIED", fixture(name));
    for (int round = 0; round < 1500; ++round) {
      std::string line = base;
      const int edits = 1 + static_cast<int>(next() % 3);
      for (int e = 0; e < edits; ++e) {
        const std::size_t at = next() % line.size();
        const char c = significant[next() % (sizeof significant - 1)];
        switch (next() % 3) {
          case 0:
            line[at] = c;
            break;
          case 1:
            line.insert(line.begin() + static_cast<std::ptrdiff_t>(at), c);
            break;
          default:
            line.erase(at, 1 + next() % 4);
            break;
        }
      }
      bool ok = false;
      tape(line, ok);
      if (check_agrees(line)) ++taken;
      if (!ok) ++refused;
      if (HasFailure()) return;
    }
  }
  EXPECT_GT(taken, 1000);
  EXPECT_GT(refused, 1000);
}

// Timestamps take a shortcut for the API server's own form: it must agree with the general
// RFC 3339 reader the tape decoder uses, at the edges of every field and on random dates.
TEST(K8sPodDirect, timestamps_decode_as_the_tape_decoder_reads_them) {
  std::vector<std::string> times = {"0000-01-01T00:00:00Z",   "0000-02-29T23:59:59Z",
                                    "0000-03-01T00:00:00Z",   "0001-01-01T00:00:00Z",
                                    "1969-12-31T23:59:59Z",   "1970-01-01T00:00:00Z",
                                    "2000-02-29T12:00:00Z",   "2024-05-01T10:00:00Z",
                                    "9999-12-31T23:59:60Z",   "2024-00-01T00:00:00Z",
                                    "2024-13-01T00:00:00Z",   "2024-01-00T00:00:00Z",
                                    "2024-01-32T00:00:00Z",   "2024-01-01T24:00:00Z",
                                    "2024-01-01T00:60:00Z",   "2024-01-01T00:00:61Z",
                                    "2024-01-01t00:00:00Z",   "2024-01-01T00:00:00z",
                                    "2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00+02:00",
                                    "2024-01-01T00:00:0aZ",   "2024-01-01T00:00:00",
                                    "2024-1-01T00:00:00Z",    "+024-01-01T00:00:00Z",
                                    "2024-01-01 00:00:00Z",   "2024/01/01T00:00:00Z",
                                    "2024-01-01T00:00:00ZZ",  ""};
  std::uint64_t x = 12345;
  for (int i = 0; i < 300; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04u-%02u-%02uT%02u:%02u:%02uZ",
                  static_cast<unsigned>(x >> 20) % 10000, static_cast<unsigned>(x >> 34) % 14,
                  static_cast<unsigned>(x >> 40) % 33, static_cast<unsigned>(x >> 46) % 25,
                  static_cast<unsigned>(x >> 52) % 61, static_cast<unsigned>(x >> 58) % 62);
    times.emplace_back(buf);
  }
  int taken = 0;
  for (const auto& t : times) {
    SCOPED_TRACE(t);
    // Twice in a row (the second from the decoder's memo), and in a container state.
    const std::string pod =
        R"({"metadata":{"name":"a","creationTimestamp":")" + t + R"("},"status":{"startTime":")" +
        t + R"(","containerStatuses":[{"name":"c","state":{"running":{"startedAt":")" + t +
        R"("}}}]}})";
    if (check_agrees(event("ADDED", pod))) ++taken;
  }
  EXPECT_GT(taken, 100);
}

// The skipper of unread subtrees keeps the innermost 64 open brackets in a register and spills
// the ones above: nesting well past 64 levels, with one closing bracket of the wrong kind at
// any level, is judged as the full parse (which skips nothing) judges it.
TEST(K8sPodDirect, deeply_nested_unread_subtrees_are_judged_as_a_full_parse_judges_them) {
  auto nested = [](int levels, int wrong) {
    std::string open;
    std::string close;
    for (int i = 0; i < levels; ++i) {
      const bool square = i % 3 != 1;
      open += square ? "[" : R"({"a":)";
      char c = square ? ']' : '}';
      if (i == wrong) c = square ? '}' : ']';
      close.insert(close.begin(), c);
    }
    return open + "1" + close;
  };
  auto pod = [](const std::string& env) {
    return R"({"metadata":{"name":"a"},"spec":{"containers":[{"name":"c","env":)" + env + "}]}}";
  };
  int accepted = 0;
  int refused = 0;
  for (int levels : {1, 63, 64, 65, 130, 505, 506, 507, 600}) {
    for (int wrong : {-1, 0, 1, 62, 63, 64, 65, 100, 129, levels - 1}) {
      if (wrong >= levels) continue;
      SCOPED_TRACE(std::to_string(levels) + " levels, wrong at " + std::to_string(wrong));
      const std::string text = pod(nested(levels, wrong));
      bool full_ok = true;
      try {
        (void)Pod::parse(text);
      } catch (const podgauge::k8s::JsonSyntaxError&) {
        full_ok = false;
      }
      bool watch_ok = true;
      try {
        (void)WatchEvent<Pod>::parse(event("ADDED", text));
      } catch (const podgauge::k8s::JsonSyntaxError&) {
        watch_ok = false;
      }
      EXPECT_EQ(watch_ok, full_ok);
      check_agrees(event("ADDED", text));
      (full_ok ? accepted : refused)++;
    }
  }
  EXPECT_GT(accepted, 5);
  EXPECT_GT(refused, 40);
}
