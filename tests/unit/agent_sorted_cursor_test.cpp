// SortedCursor: map lookups that exploit keys arriving in order, and stay right when they don't.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "podgauge/agent/sorted_cursor.h"

using podgauge::agent::SortedCursor;

TEST(SortedCursor, finds_keys_in_order_out_of_order_and_reports_missing_ones) {
  std::map<std::string, int> m{{"a", 1}, {"b", 2}, {"c", 3}, {"e", 5}};
  SortedCursor at(m);
  EXPECT_EQ(at.find("a")->second, 1);
  EXPECT_EQ(at.find("b")->second, 2);
  EXPECT_EQ(at.find("d"), at.end()) << "between two keys";
  EXPECT_EQ(at.find("e")->second, 5);
  EXPECT_EQ(at.find("a")->second, 1) << "back to the start";
  EXPECT_EQ(at.find("c")->second, 3) << "skipping one";
  EXPECT_EQ(at.find("z"), at.end()) << "past the end";
  EXPECT_EQ(at.find("e")->second, 5);
}

TEST(SortedCursor, get_inserts_what_is_missing_and_returns_the_entries_that_exist) {
  std::map<std::string, int> m{{"b", 2}, {"d", 4}};
  SortedCursor at(m);
  at.get("a")->second = 10;
  EXPECT_EQ(at.get("b")->second, 2);
  at.get("c")->second = 30;
  EXPECT_EQ(at.get("d")->second, 4);
  at.get("e")->second = 50;
  EXPECT_EQ(at.get("b")->second, 2) << "out of order";
  EXPECT_EQ(m, (std::map<std::string, int>{{"a", 10}, {"b", 2}, {"c", 30}, {"d", 4}, {"e", 50}}));
}
