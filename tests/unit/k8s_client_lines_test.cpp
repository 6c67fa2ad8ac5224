#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "podgauge/k8s/api_client.h"

using namespace podgauge::k8s;

TEST(LineSplitter, joins_lines_split_across_chunks) {
  LineSplitter s;
  std::vector<std::string> lines;
  auto on = [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  };
  EXPECT_TRUE(s.feed("{\"a\":1}\n{\"b\"", on));
  EXPECT_EQ(s.pending(), "{\"b\"");
  EXPECT_TRUE(s.feed(":2", on));
  EXPECT_TRUE(s.feed("}\r\n\n{\"c\":3}\n", on));
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"}));
  EXPECT_TRUE(s.pending().empty());
}

TEST(LineSplitter, stops_when_the_consumer_says_so) {
  LineSplitter s;
  int n = 0;
  EXPECT_FALSE(s.feed("1\n2\n3\n", [&](std::string_view) { return ++n < 2; }));
  EXPECT_EQ(n, 2);
}

TEST(LineSplitter, one_byte_chunks) {
  LineSplitter s;
  std::vector<std::string> lines;
  std::string text = "abc\ndef\n";
  for (char c : text)
    s.feed(std::string_view(&c, 1), [&](std::string_view l) {
      lines.emplace_back(l);
      return true;
    });
  EXPECT_EQ(lines, (std::vector<std::string>{"abc", "def"}));
}

TEST(ApiClient, rejects_a_server_that_is_not_a_url) {
  RestConfig rc;
  rc.server = "10.0.0.1:6443";
  rc.source = "test";
  EXPECT_THROW(ApiClient c(rc), ConfigError);
}

TEST(ApiClient, unreachable_server_names_the_url_and_the_os_error) {
  RestConfig rc;
  rc.server = "http://127.0.0.1:1";  // nothing listens on port 1
  rc.source = "test";
  ApiClient c(rc);
  try {
    c.get("/api/v1/pods");
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.kind(), ApiErrorKind::Unreachable);
    std::string m = e.what();
    EXPECT_NE(m.find("http://127.0.0.1:1/api/v1/pods"), std::string::npos) << m;
    EXPECT_NE(m.find("Connection refused"), std::string::npos) << m;
  }
}
