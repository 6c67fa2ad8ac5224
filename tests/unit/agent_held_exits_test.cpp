// HeldExits: an exit record whose cgroup no walk has seen yet waits for it, in order, and is
// dropped (and counted) only when the cgroup never turns up.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "podgauge/agent/process_lifecycle.h"

using podgauge::agent::HeldExits;
using podgauge::agent::ResolvedCgroup;
using podgauge::loader::ProcessExit;
using namespace std::chrono_literals;

namespace {

struct World {
  std::map<uint64_t, std::string> known;  // what the resolver knows now
  std::vector<std::pair<uint32_t, std::string>> published;  // pid, cgroup path
  int resolves = 0;

  HeldExits::Resolve resolve() {
    return [this](uint64_t id) {
      ++resolves;
      ResolvedCgroup r;
      if (auto it = known.find(id); it != known.end())
        r.path = std::make_shared<const std::string>(it->second);
      return r;
    };
  }
  HeldExits::Publish publish() {
    return [this](const ProcessExit& x, const ResolvedCgroup& where) {
      published.emplace_back(x.pid, *where.path);
    };
  }
};

ProcessExit exit_of(uint32_t pid, uint64_t cgroup) {
  ProcessExit x;
  x.pid = x.tgid = pid;
  x.cgroup_id = cgroup;
  return x;
}

using Published = std::vector<std::pair<uint32_t, std::string>>;

}  // namespace

TEST(HeldExits, a_known_cgroups_exit_passes_at_once) {
  World w;
  w.known[7] = "/kubepods/pod1/c1";
  HeldExits held;
  const auto t0 = HeldExits::Clock::now();
  held.offer(exit_of(100, 7), w.resolve(), w.publish(), t0);
  EXPECT_EQ(w.published, (Published{{100, "/kubepods/pod1/c1"}}));
  EXPECT_EQ(held.held(), 0u);
  EXPECT_EQ(held.dropped(), 0u);
}

TEST(HeldExits, exits_of_a_new_cgroup_wait_for_it_and_leave_in_order) {
  World w;
  w.known[7] = "/kubepods/pod1/c1";
  HeldExits held;
  const auto t0 = HeldExits::Clock::now();
  held.offer(exit_of(1, 9), w.resolve(), w.publish(), t0);
  held.offer(exit_of(2, 9), w.resolve(), w.publish(), t0 + 1ms);
  held.offer(exit_of(3, 7), w.resolve(), w.publish(), t0 + 2ms);  // known: not held up by 9
  EXPECT_EQ(w.published, (Published{{3, "/kubepods/pod1/c1"}}));
  EXPECT_EQ(held.held(), 2u);

  held.retry(w.resolve(), w.publish(), t0 + 100ms);
  EXPECT_EQ(held.held(), 2u) << "cgroup 9 is still unknown";

  // The walk finds cgroup 9; a record arriving before the retry still queues behind the
  // two waiting ones of its cgroup.
  w.known[9] = "/kubepods/pod2/c2";
  held.offer(exit_of(4, 9), w.resolve(), w.publish(), t0 + 200ms);
  EXPECT_EQ(w.published.size(), 1u) << "pid 4 overtook the held records of its cgroup";
  held.retry(w.resolve(), w.publish(), t0 + 250ms);
  EXPECT_EQ(w.published, (Published{{3, "/kubepods/pod1/c1"},
                                    {1, "/kubepods/pod2/c2"},
                                    {2, "/kubepods/pod2/c2"},
                                    {4, "/kubepods/pod2/c2"}}));
  EXPECT_EQ(held.held(), 0u);
  EXPECT_EQ(held.dropped(), 0u);

  held.offer(exit_of(5, 9), w.resolve(), w.publish(), t0 + 300ms);
  EXPECT_EQ(w.published.back(), (std::pair<uint32_t, std::string>{5, "/kubepods/pod2/c2"}))
      << "once nothing waits, records of the cgroup pass at once again";
}

TEST(HeldExits, a_cgroup_that_never_turns_up_is_dropped_after_the_hold_and_counted) {
  World w;
  HeldExits held(10s);
  const auto t0 = HeldExits::Clock::now();
  held.offer(exit_of(1, 11), w.resolve(), w.publish(), t0);
  held.offer(exit_of(2, 12), w.resolve(), w.publish(), t0 + 5s);
  held.retry(w.resolve(), w.publish(), t0 + 9s);
  EXPECT_EQ(held.held(), 2u);
  EXPECT_EQ(held.dropped(), 0u);
  held.retry(w.resolve(), w.publish(), t0 + 10s);
  EXPECT_EQ(held.held(), 1u) << "the first waited 10 s";
  EXPECT_EQ(held.dropped(), 1u);
  w.known[12] = "/kubepods/pod3/c3";
  held.retry(w.resolve(), w.publish(), t0 + 11s);
  EXPECT_EQ(w.published, (Published{{2, "/kubepods/pod3/c3"}}));
  EXPECT_EQ(held.held(), 0u);
  EXPECT_EQ(held.dropped(), 1u);
}

TEST(HeldExits, a_full_queue_drops_and_counts_and_a_retry_resolves_each_cgroup_once) {
  World w;
  HeldExits held(10s, 3);
  const auto t0 = HeldExits::Clock::now();
  for (uint32_t pid = 1; pid <= 5; ++pid) held.offer(exit_of(pid, 20), w.resolve(), w.publish(), t0);
  EXPECT_EQ(held.held(), 3u);
  EXPECT_EQ(held.dropped(), 2u);
  w.known[20] = "/kubepods/pod4/c4";
  w.resolves = 0;
  held.retry(w.resolve(), w.publish(), t0 + 1s);
  EXPECT_EQ(w.resolves, 1) << "three records of one cgroup need one lookup";
  EXPECT_EQ(w.published, (Published{{1, "/kubepods/pod4/c4"},
                                    {2, "/kubepods/pod4/c4"},
                                    {3, "/kubepods/pod4/c4"}}));
}
