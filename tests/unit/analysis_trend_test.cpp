#include <gtest/gtest.h>

#include "podgauge/analysis/trend.h"

using podgauge::analysis::LinearTrend;

TEST(LinearTrend, recovers_the_slope_of_a_line_and_fits_noise_by_least_squares) {
  LinearTrend line;
  for (int x = 0; x < 60; ++x) line.add(x, 1e6 + 2.5e5 * x);
  ASSERT_TRUE(line.slope());
  EXPECT_DOUBLE_EQ(*line.slope(), 2.5e5);

  // y = 3x + (+1, -1, +1, ...) over x = 0..9: slope = 3 + cov(x, e) / var(x) = 3 - 5 / 82.5.
  LinearTrend noisy;
  for (int x = 0; x < 10; ++x) noisy.add(x, 3.0 * x + (x % 2 ? -1.0 : 1.0));
  EXPECT_NEAR(*noisy.slope(), 3.0 - 5.0 / 82.5, 1e-12);
  EXPECT_EQ(noisy.size(), 10u);
}

TEST(LinearTrend, no_slope_without_two_distinct_times) {
  LinearTrend none;
  EXPECT_FALSE(none.slope());
  LinearTrend one;
  one.add(1, 5);
  EXPECT_FALSE(one.slope());
  LinearTrend same_time;
  same_time.add(2, 5);
  same_time.add(2, 9);
  EXPECT_FALSE(same_time.slope());
  LinearTrend falling;
  falling.add(0, 10);
  falling.add(1, 4);
  EXPECT_DOUBLE_EQ(*falling.slope(), -6.0);
}
