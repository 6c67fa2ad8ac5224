// ContainerReading reuse: the sampler keeps one reading per container across rounds.
#include <gtest/gtest.h>

#include "podgauge/agent/usage_model.h"

using namespace podgauge::agent;

TEST(FreshReading, blanks_every_field_and_takes_the_new_target) {
  ContainerReading r;
  r.target.kind = UsageTarget::Kind::Container;
  r.target.pod_uid = std::string(36, 'u');
  r.target.container_id = std::string(64, 'a');
  r.cpu_ns = 5;
  r.cfs = CfsStats{1, 2, 3};
  r.memory = podgauge::cgroup::MemoryUsage{};
  r.cpu_limit_cores = 1.5;
  r.cpu_request_cores = 0.5;
  r.memory_request_bytes = 1e9;
  UsageTarget next;
  next.kind = UsageTarget::Kind::Container;
  next.pod_uid = std::string(36, 'v');
  next.container_id = std::string(64, 'b');
  ContainerReading& same = fresh_reading(r, next);
  EXPECT_EQ(&same, &r);
  EXPECT_EQ(r.target, next);
  EXPECT_EQ(r.cpu_ns, 0u);
  EXPECT_FALSE(r.cfs);
  EXPECT_FALSE(r.memory);
  EXPECT_FALSE(r.cpu_limit_cores);
  EXPECT_FALSE(r.cpu_request_cores);
  EXPECT_FALSE(r.memory_request_bytes);
}
