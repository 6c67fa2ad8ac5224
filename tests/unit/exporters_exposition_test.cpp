#include "podgauge/exporters/exposition.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

using podgauge::exporters::append_escaped_help;
using podgauge::exporters::append_escaped_label_value;
using podgauge::exporters::append_sample_value;
using podgauge::exporters::ExpositionError;
using podgauge::exporters::ExpositionWriter;
using podgauge::exporters::Label;
using podgauge::exporters::MetricType;
using ::testing::HasSubstr;

std::string value_text(double v) {
  std::string s;
  append_sample_value(s, v);
  return s;
}

std::string label_text(std::string_view v) {
  std::string s;
  append_escaped_label_value(s, v);
  return s;
}

std::string help_text(std::string_view v) {
  std::string s;
  append_escaped_help(s, v);
  return s;
}

TEST(Exposition, escapes_label_values_backslash_quote_newline) {
  EXPECT_EQ(label_text("plain-pod-7d9f"), "plain-pod-7d9f");
  EXPECT_EQ(label_text(R"(C:\path)"), R"(C:\\path)");
  EXPECT_EQ(label_text(R"(say "hi")"), R"(say \"hi\")");
  EXPECT_EQ(label_text("two\nlines"), R"(two\nlines)");
  EXPECT_EQ(label_text("\\\"\n"), R"(\\\"\n)");
}

TEST(Exposition, keeps_unicode_and_replaces_invalid_utf8) {
  EXPECT_EQ(label_text("pöd-日本-🚀"), "pöd-日本-🚀");
  EXPECT_EQ(label_text("bad\xff\"x"), "bad\xEF\xBF\xBD\\\"x");
  EXPECT_EQ(help_text("Größe \xC0"), "Größe \xEF\xBF\xBD");
}

TEST(Exposition, escapes_help_backslash_and_newline_but_not_quote) {
  EXPECT_EQ(help_text(R"(a\b "q")"), R"(a\\b "q")");
  EXPECT_EQ(help_text("line1\nline2"), R"(line1\nline2)");
}

TEST(Exposition, formats_values_prometheus_parses) {
  EXPECT_EQ(value_text(0), "0");
  EXPECT_EQ(value_text(42), "42");
  EXPECT_EQ(value_text(-3), "-3");
  EXPECT_EQ(value_text(4294967296.0), "4294967296");
  EXPECT_EQ(value_text(1e20), "100000000000000000000");
  EXPECT_EQ(value_text(0.1), "0.1");
  EXPECT_EQ(value_text(12345.678901234), "12345.678901234");
  EXPECT_EQ(value_text(1.5e-7), "1.5e-07");
  EXPECT_EQ(value_text(1e300), "1e+300");
  EXPECT_EQ(value_text(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(value_text(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(value_text(std::nan("")), "NaN");
  // Counters in seconds keep every bit: the text parses back to the same double.
  const double cpu = 123456.789012345678;
  EXPECT_EQ(std::stod(value_text(cpu)), cpu);
}

TEST(Exposition, writes_family_once_then_samples) {
  ExpositionWriter w;
  w.family("podgauge_container_oom_kills_total", "OOM kills.", MetricType::counter);
  w.sample({{"namespace", "prod"}, {"pod", "api-0"}}, 2);
  w.sample({{"namespace", "prod"}, {"pod", "api-1"}}, 0);
  w.family("podgauge_agent_up", "1 when the agent runs.", MetricType::gauge);
  w.sample({}, 1.0);
  w.family("podgauge_agent_events_total", "Events.", MetricType::counter);
  w.sample_integer({}, 18446744073709551615ULL);
  EXPECT_EQ(w.text(),
            "# HELP podgauge_container_oom_kills_total OOM kills.\n"
            "# TYPE podgauge_container_oom_kills_total counter\n"
            "podgauge_container_oom_kills_total{namespace=\"prod\",pod=\"api-0\"} 2\n"
            "podgauge_container_oom_kills_total{namespace=\"prod\",pod=\"api-1\"} 0\n"
            "# HELP podgauge_agent_up 1 when the agent runs.\n"
            "# TYPE podgauge_agent_up gauge\n"
            "podgauge_agent_up 1\n"
            "# HELP podgauge_agent_events_total Events.\n"
            "# TYPE podgauge_agent_events_total counter\n"
            "podgauge_agent_events_total 18446744073709551615\n");
}

TEST(Exposition, writes_cumulative_histogram_with_inf_sum_count) {
  ExpositionWriter w;
  w.family("podgauge_container_runqueue_latency_seconds", "Run-queue delay.", MetricType::histogram);
  const std::vector<double> bounds{0.001, 0.01, 0.1};
  const std::vector<std::uint64_t> counts{5, 3, 0, 2};
  w.histogram({{"pod", "a"}}, bounds, counts, 1.25);
  EXPECT_EQ(w.text(),
            "# HELP podgauge_container_runqueue_latency_seconds Run-queue delay.\n"
            "# TYPE podgauge_container_runqueue_latency_seconds histogram\n"
            "podgauge_container_runqueue_latency_seconds_bucket{pod=\"a\",le=\"0.001\"} 5\n"
            "podgauge_container_runqueue_latency_seconds_bucket{pod=\"a\",le=\"0.01\"} 8\n"
            "podgauge_container_runqueue_latency_seconds_bucket{pod=\"a\",le=\"0.1\"} 8\n"
            "podgauge_container_runqueue_latency_seconds_bucket{pod=\"a\",le=\"+Inf\"} 10\n"
            "podgauge_container_runqueue_latency_seconds_sum{pod=\"a\"} 1.25\n"
            "podgauge_container_runqueue_latency_seconds_count{pod=\"a\"} 10\n");
}

TEST(Exposition, rejects_invalid_names_and_misuse) {
  ExpositionWriter w;
  EXPECT_THROW(w.family("1bad", "h", MetricType::gauge), ExpositionError);
  EXPECT_THROW(w.family("bad-name", "h", MetricType::gauge), ExpositionError);
  EXPECT_THROW(w.family("", "h", MetricType::gauge), ExpositionError);
  EXPECT_THROW(w.sample({}, 1.0), ExpositionError);  // no family yet
  w.family("ns:recorded_rule:ok", "colons are legal in metric names", MetricType::gauge);
  EXPECT_THROW(w.sample({{"has:colon", "v"}}, 1.0), ExpositionError);
  EXPECT_THROW(w.sample({{"__reserved", "v"}}, 1.0), ExpositionError);
  EXPECT_THROW(w.sample({{"9x", "v"}}, 1.0), ExpositionError);
  EXPECT_THROW(w.sample({{"pod", "a"}, {"pod", "b"}}, 1.0), ExpositionError);
  EXPECT_THROW(w.family("ns:recorded_rule:ok", "again", MetricType::gauge), ExpositionError);
  const std::vector<double> bounds{1.0};
  const std::vector<std::uint64_t> counts{1, 1};
  EXPECT_THROW(w.histogram({}, bounds, counts, 1.0), ExpositionError);  // gauge family
  w.family("h_seconds", "h", MetricType::histogram);
  EXPECT_THROW(w.sample({}, 1.0), ExpositionError);
  EXPECT_THROW(w.histogram({{"le", "1"}}, bounds, counts, 1.0), ExpositionError);
  const std::vector<std::uint64_t> short_counts{1};
  EXPECT_THROW(w.histogram({}, bounds, short_counts, 1.0), ExpositionError);
  const std::vector<double> unsorted{2.0, 1.0};
  const std::vector<std::uint64_t> three{1, 1, 1};
  EXPECT_THROW(w.histogram({}, unsorted, three, 1.0), ExpositionError);
  try {
    w.family("bad-name", "h", MetricType::gauge);
    FAIL();
  } catch (const ExpositionError& e) {
    EXPECT_THAT(e.what(), HasSubstr("bad-name"));
    EXPECT_THAT(e.what(), HasSubstr("[a-zA-Z_:]"));
  }
}

// A page like the agent's, with awkward label values, must pass Prometheus' own parser/linter.
TEST(Exposition, realistic_page_passes_promtool_check_metrics) {
  ExpositionWriter w;
  w.family("podgauge_container_cpu_usage_seconds_total", "CPU time used by the container.",
           MetricType::counter);
  for (int i = 0; i < 200; ++i) {
    const std::string pod = "api-" + std::to_string(i);
    w.sample({{"node", "node-a"}, {"namespace", "prod"}, {"pod", pod}, {"container", "app"},
              {"pod_uid", "0b1e0f2a-1111-2222-3333-444455556666"}},
             1234.5678 + i);
  }
  w.sample({{"node", "node-a"}, {"namespace", "we\"ird\\ns"}, {"pod", "line\nbreak"},
            {"container", "ünï-🚀"}, {"pod_uid", "x"}},
           0.1);
  w.family("podgauge_container_memory_working_set_bytes",
           "Working set (usage - inactive_file), as the kubelet computes it. Path C:\\x\nnext.",
           MetricType::gauge);
  w.sample_integer({{"namespace", "prod"}, {"pod", "api-0"}, {"container", "app"}}, 67108864);
  w.sample({{"namespace", "prod"}, {"pod", "api-1"}, {"container", "app"}},
           std::numeric_limits<double>::quiet_NaN());
  w.family("podgauge_container_runqueue_latency_seconds", "Run-queue delay.", MetricType::histogram);
  const std::vector<double> bounds{1e-6, 1e-5, 1e-4, 0.001, 0.01, 0.1, 1};
  const std::vector<std::uint64_t> counts{1, 2, 3, 4, 5, 6, 7, 8};
  w.histogram({{"namespace", "prod"}, {"pod", "api-0"}}, bounds, counts, 9.75);
  w.family("podgauge_agent_ring_buffer_drops_total", "Events dropped.", MetricType::counter);
  w.sample({}, std::numeric_limits<double>::infinity());

  const std::string page = w.take();
  const std::string path = ::testing::TempDir() + "/podgauge_exposition_page.prom";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fwrite(page.data(), 1, page.size(), f);
    std::fclose(f);
  }
  const std::string cmd = "command -v promtool >/dev/null 2>&1 || { echo 'promtool not found: apt-get install "
                          "prometheus'; exit 127; }; promtool check metrics < " + path + " 2>&1";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  const int status = ::pclose(p);
  EXPECT_EQ(status, 0) << "promtool check metrics failed:\n" << output << "\npage:\n" << page.substr(0, 2000);
  EXPECT_EQ(output, "");
}

TEST(Exposition, large_page_builds_in_one_buffer) {
  ExpositionWriter w(8 << 20);
  w.family("podgauge_container_cpu_usage_seconds_total", "CPU.", MetricType::counter);
  std::string pod;
  for (int i = 0; i < 50'000; ++i) {
    pod = "pod-" + std::to_string(i);
    w.sample({{"namespace", "ns"}, {"pod", pod}, {"container", "c"}}, i * 0.5);
  }
  const std::string page = w.take();
  EXPECT_THAT(page, HasSubstr("pod=\"pod-49999\",container=\"c\"} 24999.5\n"));
  EXPECT_TRUE(w.text().empty());
}

}  // namespace
