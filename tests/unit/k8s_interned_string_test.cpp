#include "podgauge/k8s/interned_string.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "podgauge/k8s/list.h"
#include "podgauge/k8s/pod.h"

using podgauge::k8s::InternedString;

TEST(InternedString, equal_texts_share_one_copy) {
  const std::string a_text = "app.kubernetes.io/name-shared-by-many-pods";
  InternedString a(a_text);
  InternedString b(std::string_view("app.kubernetes.io/name-shared-by-many-pods"));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.data(), b.data());  // one copy, not two
  EXPECT_EQ(a, a_text);
  EXPECT_NE(a.data(), a_text.data());
  EXPECT_EQ(sizeof(InternedString), sizeof(void*));
}

TEST(InternedString, reads_and_compares_like_a_string) {
  InternedString s = "Running";
  EXPECT_EQ(s, "Running");
  EXPECT_NE(s, "Pending");
  EXPECT_EQ(s.size(), 7u);
  EXPECT_TRUE(s.starts_with("Run"));
  EXPECT_TRUE(s < InternedString("Succeeded"));
  EXPECT_TRUE(s > std::string_view("Pending"));
  const std::string& ref = s;
  EXPECT_EQ(ref, "Running");
  std::string_view view = s;
  EXPECT_EQ(view, "Running");
  EXPECT_EQ(s + "/x", "Running/x");
  EXPECT_EQ("x/" + s, "x/Running");
  std::ostringstream out;
  out << s;
  EXPECT_EQ(out.str(), "Running");
  EXPECT_EQ(nlohmann::json(s), nlohmann::json("Running"));
  EXPECT_EQ(nlohmann::json("Failed").get<InternedString>(), "Failed");
  std::map<InternedString, int> by_name{{"b", 2}, {"a", 1}};
  EXPECT_EQ(by_name.begin()->first, "a");
}

TEST(InternedString, empty_is_the_default_and_takes_no_entry) {
  const auto before = InternedString::table_stats().entries;
  InternedString empty;
  InternedString also_empty("");
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty, also_empty);
  EXPECT_EQ(empty, "");
  EXPECT_STREQ(empty.c_str(), "");
  EXPECT_EQ(InternedString::table_stats().entries, before);
}

TEST(InternedString, copies_and_moves_keep_the_text) {
  InternedString a = "ContainersReady";
  InternedString b = a;
  InternedString c = std::move(b);
  EXPECT_EQ(c, "ContainersReady");
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  b = c;
  EXPECT_EQ(b, c);
}

TEST(InternedString, threads_interning_the_same_texts_agree) {
  constexpr int kThreads = 4;
  constexpr int kTexts = 2000;
  std::vector<std::vector<const char*>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &seen] {
      for (int i = 0; i < kTexts; ++i) {
        InternedString s("thread-shared-text-number-" + std::to_string(i));
        seen[t].push_back(s.data());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t], seen[0]);
}

TEST(InternedString, decoded_pods_share_their_repeated_texts) {
  auto pod = [](const char* name) {
    return std::string(R"({"metadata":{"name":")") + name +
           R"(","labels":{"app.kubernetes.io/component":"frontend"}},)"
           R"("spec":{"containers":[{"name":"app","image":"registry.example.com/frontend:v1.2.3",)"
           R"("resources":{"requests":{"cpu":"100m"}}}]},)"
           R"("status":{"phase":"Running","conditions":[{"type":"PodReadyToStartContainers","status":"True"}]}})";
  };
  const auto list = podgauge::k8s::ObjectList<podgauge::k8s::Pod>::parse(
      R"({"kind":"PodList","items":[)" + pod("a") + "," + pod("b") + "]}");
  ASSERT_EQ(list.items.size(), 2u);
  const auto& a = list.items[0];
  const auto& b = list.items[1];
  EXPECT_EQ(a.spec.containers[0].image, "registry.example.com/frontend:v1.2.3");
  EXPECT_EQ(a.spec.containers[0].image.data(), b.spec.containers[0].image.data());
  EXPECT_EQ(a.status.conditions[0].type.data(), b.status.conditions[0].type.data());
  EXPECT_EQ(a.metadata.labels.begin()->first.data(), b.metadata.labels.begin()->first.data());
  EXPECT_EQ(a.spec.containers[0].resources.requests.begin()->first.data(),
            b.spec.containers[0].resources.requests.begin()->first.data());
  EXPECT_EQ(*a.metadata.label("app.kubernetes.io/component"), "frontend");
}

// Last in this binary: it fills the process-wide table to its limit.
TEST(InternedString, past_the_table_limit_texts_are_private_copies_and_still_work) {
  const std::string pad(200, 'x');
  int i = 0;
  while (InternedString::table_stats().bytes < podgauge::k8s::kInternedStringLimit) {
    InternedString filler(pad + std::to_string(i++));
    ASSERT_LT(i, 1'000'000) << "the table does not stop growing";
  }
  const auto full = InternedString::table_stats();
  const std::string text = "a-text-first-seen-after-the-table-is-full";
  InternedString a(text);
  InternedString b(text);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, text);
  EXPECT_NE(a.data(), b.data());  // private copies
  InternedString c = a;
  EXPECT_EQ(c, text);
  EXPECT_NE(c.data(), a.data());
  a = InternedString("Running");  // assigning over a private copy frees it (ASan would say)
  EXPECT_EQ(a, "Running");
  EXPECT_EQ(InternedString::table_stats().entries, full.entries);
  // Texts shared before the table filled up are still shared.
  InternedString shared = pad + "0";
  InternedString shared_too = pad + "0";
  EXPECT_EQ(shared.data(), shared_too.data());
}
