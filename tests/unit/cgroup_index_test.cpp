#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "podgauge/cgroup/cgroup_index.h"
#include "podgauge/cgroup/hierarchy.h"

namespace podgauge::cgroup {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

CgroupId inode_of(const fs::path& path) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) throw std::runtime_error("lstat " + path.string() + " failed");
  return status.st_ino;
}

std::string random_suffix() {
  std::random_device random;
  return std::to_string(::getpid()) + "-" + std::to_string(random());
}

// A unique directory tree under the system temp dir, removed when the test ends.
class TempTree {
 public:
  TempTree() : root_(fs::temp_directory_path() / ("podgauge-index-test-" + random_suffix())) {
    fs::create_directory(root_);
  }
  ~TempTree() {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }
  const fs::path& root() const { return root_; }
  fs::path make(const std::string& relative) const {
    fs::path path = root_ / relative;
    fs::create_directories(path);
    return path;
  }

 private:
  fs::path root_;
};

// A steady clock the test moves by hand.
struct ManualClock {
  std::chrono::steady_clock::time_point now{};
  SteadyClock function() {
    return [this] { return now; };
  }
};

std::string path_of(const std::optional<CgroupEntry>& entry) { return entry ? *entry->path : "<none>"; }

TEST(CgroupIndex, maps_directory_inodes_to_relative_paths) {
  TempTree tree;
  tree.make("a/b");
  tree.make("c");
  std::ofstream(tree.root() / "a" / "not-a-cgroup-file") << "x";
  fs::create_directory_symlink(tree.root() / "a", tree.root() / "link-to-a");
  fs::create_directory_symlink("/usr", tree.root() / "link-outside");

  CgroupIndex index(tree.root());
  RescanResult result = index.rescan();
  EXPECT_EQ(result.directories, 4u);
  EXPECT_EQ(result.added, 4u);
  EXPECT_EQ(index.size(), 4u);
  EXPECT_EQ(path_of(index.find(inode_of(tree.root()))), "/");
  EXPECT_EQ(path_of(index.find(inode_of(tree.root() / "a"))), "/a");
  EXPECT_EQ(path_of(index.find(inode_of(tree.root() / "a" / "b"))), "/a/b");
  EXPECT_EQ(path_of(index.find(inode_of(tree.root() / "c"))), "/c");
  EXPECT_FALSE(index.find(inode_of(tree.root() / "a" / "not-a-cgroup-file")));
  EXPECT_FALSE(index.find(inode_of(tree.root() / "link-to-a")));
  EXPECT_FALSE(index.lookup(inode_of(tree.root() / "a" / "b"))->removed);

  // A second walk over an unchanged tree changes nothing and shares the stored paths.
  auto before = index.find(inode_of(tree.root() / "a" / "b"));
  result = index.rescan();
  EXPECT_EQ(result.added, 0u);
  EXPECT_EQ(result.removed, 0u);
  EXPECT_EQ(index.find(inode_of(tree.root() / "a" / "b"))->path, before->path);
}

TEST(CgroupIndex, keeps_removed_directories_as_tombstones_until_the_ttl_expires) {
  TempTree tree;
  CgroupId gone = inode_of(tree.make("pod/container"));
  ManualClock clock;
  CgroupIndex index(tree.root(), {.tombstone_ttl = 10min, .clock = clock.function()});
  index.rescan();

  fs::remove(tree.root() / "pod" / "container");
  clock.now += 1s;
  EXPECT_EQ(index.rescan().removed, 1u);
  auto tombstone = index.lookup(gone);
  ASSERT_TRUE(tombstone.has_value());
  EXPECT_TRUE(tombstone->removed);
  EXPECT_EQ(*tombstone->path, "/pod/container");

  clock.now += 9min;
  EXPECT_EQ(index.rescan().expired, 0u);
  EXPECT_TRUE(index.find(gone).has_value());

  clock.now += 1min;
  EXPECT_FALSE(index.find(gone).has_value()) << "expired tombstones are hidden even before the next rescan";
  EXPECT_EQ(index.rescan().expired, 1u);
  EXPECT_EQ(index.size(), 2u);

  std::size_t removed_seen = 0;
  index.for_each([&](CgroupId, const CgroupEntry& entry) { removed_seen += entry.removed; });
  EXPECT_EQ(removed_seen, 0u);
}

TEST(CgroupIndex, lists_tombstones_in_snapshots) {
  TempTree tree;
  tree.make("stays");
  tree.make("goes");
  CgroupIndex index(tree.root());
  index.rescan();
  fs::remove(tree.root() / "goes");
  index.rescan();
  auto entries = index.snapshot();
  ASSERT_EQ(entries.size(), 3u);
  for (const auto& [id, entry] : entries) {
    EXPECT_EQ(entry.removed, *entry.path == "/goes") << *entry.path;
  }
}

TEST(CgroupIndex, rescans_on_miss_at_most_once_per_interval) {
  TempTree tree;
  ManualClock clock;
  CgroupIndex index(tree.root(), {.min_rescan_interval = 200ms, .clock = clock.function()});

  CgroupId early = inode_of(tree.make("early"));
  EXPECT_EQ(path_of(index.lookup(early)), "/early") << "the first miss scans an empty index";
  EXPECT_EQ(index.stats().rescans, 1u);

  CgroupId late = inode_of(tree.make("late"));
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(index.lookup(late).has_value());
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(index.lookup(~CgroupId{0} - i).has_value());
  EXPECT_EQ(index.stats().rescans, 1u) << "a flood of unknown ids must not cause a scan storm";
  EXPECT_EQ(index.stats().rate_limited_misses, 2000u);

  clock.now += 199ms;
  EXPECT_FALSE(index.lookup(late).has_value());
  clock.now += 1ms;
  EXPECT_EQ(path_of(index.lookup(late)), "/late");
  EXPECT_EQ(index.stats().rescans, 2u);
  EXPECT_EQ(path_of(index.lookup(late)), "/late");
  EXPECT_EQ(index.stats().rescans, 2u) << "hits never rescan";
}

// Nested directories of NAME_MAX-long names, built and removed with *at() calls because their
// full path is longer than PATH_MAX.
struct DeepChain {
  DeepChain(const fs::path& root, int levels) {
    fds.push_back(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    for (int i = 0; i < levels; ++i) {
      std::string name = std::to_string(i) + std::string(NAME_MAX - 3, 'z');
      if (::mkdirat(fds.back(), name.c_str(), 0755) != 0) break;
      names.push_back(name);
      fds.push_back(::openat(fds.back(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      relative_path += "/" + name;
    }
    struct stat status {};
    ::fstat(fds.back(), &status);
    deepest_id = status.st_ino;
  }
  ~DeepChain() {
    for (std::size_t i = names.size(); i > 0; --i) {
      ::close(fds[i]);
      ::unlinkat(fds[i - 1], names[i - 1].c_str(), AT_REMOVEDIR);
    }
    ::close(fds[0]);
  }
  std::vector<int> fds;
  std::vector<std::string> names;
  std::string relative_path;
  CgroupId deepest_id = 0;
};

TEST(CgroupIndex, indexes_hostile_names_verbatim) {
  TempTree tree;
  const std::vector<std::string> names = {
      "new\nline", "tab\tand space", "\xe2\x98\x83-snowman", "d\xc3\xa9j\xc3\xa0", "...", "..x", "x..",
      std::string(NAME_MAX, 'n'), std::string(NAME_MAX - 1, '.') + "a", "back\\slash", "colon:name", "-leading-dash",
  };
  std::vector<CgroupId> ids;
  for (const auto& name : names) ids.push_back(inode_of(tree.make(name)));
  // A chain of maximal names goes past PATH_MAX; only openat-relative walks can index it.
  DeepChain deep(tree.root(), 20);

  CgroupIndex index(tree.root());
  index.rescan();
  for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(path_of(index.find(ids[i])), "/" + names[i]);
  EXPECT_GT(deep.relative_path.size(), std::size_t{PATH_MAX});
  EXPECT_EQ(path_of(index.find(deep.deepest_id)), deep.relative_path);
}

TEST(CgroupIndex, stops_at_the_depth_limit) {
  TempTree tree;
  CgroupId depth3 = inode_of(tree.make("1/2/3"));
  CgroupId depth4 = inode_of(tree.make("1/2/3/4"));
  CgroupIndex index(tree.root(), {.max_depth = 3});
  RescanResult result = index.rescan();
  EXPECT_TRUE(index.find(depth3).has_value());
  EXPECT_FALSE(index.find(depth4).has_value());
  EXPECT_EQ(result.unreadable, 1u);
}

// The agent indexes each cgroup the kernel made by its path alone (cgroup_mkdir), no walk.
TEST(CgroupIndex, adds_one_directory_by_its_path_without_walking) {
  TempTree tree;
  tree.make("kept");
  CgroupIndex index(tree.root());
  index.rescan();
  const CgroupId kept = inode_of(tree.root() / "kept");
  const CgroupId made = inode_of(tree.make("pod/ctr"));
  EXPECT_EQ(index.add("/pod/ctr"), made);
  EXPECT_EQ(path_of(index.find(made)), "/pod/ctr");
  EXPECT_FALSE(index.find(inode_of(tree.root() / "pod")).has_value()) << "add() walked";
  EXPECT_EQ(path_of(index.find(kept)), "/kept");
  EXPECT_EQ(index.add("/"), inode_of(tree.root()));
  EXPECT_EQ(index.add("/pod/ctr"), made) << "the same directory again";
  EXPECT_EQ(index.stats().added, 1u) << "the root (walked) and a repeat are known as they are";
  EXPECT_EQ(index.stats().rescans, 1u);

  // What the next walk finds agrees: nothing new, nothing removed.
  index.add("/pod");
  RescanResult result = index.rescan();
  EXPECT_EQ(result.added, 0u);
  EXPECT_EQ(result.removed, 0u);
  EXPECT_EQ(path_of(index.find(made)), "/pod/ctr");

  // Removed, then made again under the same name: a new id, the old one a tombstone after a walk.
  fs::remove(tree.root() / "pod" / "ctr");
  const CgroupId again = inode_of(tree.make("pod/ctr"));
  EXPECT_EQ(index.add("/pod/ctr"), again);
  index.rescan();
  if (again != made) {
    EXPECT_TRUE(index.find(made)->removed);
  }
  EXPECT_FALSE(index.find(again)->removed);
}

TEST(CgroupIndex, add_refuses_malformed_paths_symlinks_and_missing_directories) {
  TempTree tree;
  tree.make("a/b");
  fs::create_directory_symlink(tree.root() / "a", tree.root() / "link-to-a");
  std::ofstream(tree.root() / "a" / "file") << "x";
  CgroupIndex index(tree.root(), {.max_depth = 3});
  for (const std::string path : {"", "a/b", "/a//b", "/a/b/", "/a/./b", "/a/../a/b", "/..", "/link-to-a",
                                 "/link-to-a/b", "/a/file", "/a/missing", "/a/b/c/d"})
    EXPECT_EQ(index.add(path), std::nullopt) << path;
  EXPECT_EQ(index.size(), 0u);
  tree.make("a/b/c/d");
  EXPECT_EQ(index.add("/a/b/c/d"), std::nullopt) << "past the depth limit";
  EXPECT_TRUE(index.add("/a/b/c").has_value());
  EXPECT_EQ(index.stats().added, 1u);
}

TEST(CgroupIndex, follows_a_renamed_directory) {
  TempTree tree;
  CgroupId id = inode_of(tree.make("before"));
  CgroupIndex index(tree.root());
  index.rescan();
  fs::rename(tree.root() / "before", tree.root() / "after");
  RescanResult result = index.rescan();
  EXPECT_EQ(result.removed, 0u);
  auto entry = index.find(id);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(*entry->path, "/after");
  EXPECT_FALSE(entry->removed);
}

TEST(CgroupIndex, tolerates_directories_vanishing_during_walks_and_concurrent_lookups) {
  TempTree tree;
  CgroupId stable = inode_of(tree.make("stable/child"));
  tree.make("churn");
  CgroupIndex index(tree.root(), {.min_rescan_interval = 0ms});
  index.rescan();

  std::atomic<bool> stop{false};
  std::thread churner([&] {
    for (int round = 0; !stop; ++round) {
      fs::path dir = tree.root() / "churn" / std::to_string(round % 16);
      std::error_code ignored;
      fs::create_directories(dir / "a" / "b" / "c", ignored);
      fs::remove_all(dir, ignored);
    }
  });
  std::atomic<std::size_t> misses{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        auto entry = index.lookup(stable);
        if (!entry || entry->removed || *entry->path != "/stable/child") ++misses;
        index.lookup(12345678901ull);  // unknown: triggers rescans from readers too
      }
    });
  }
  for (int i = 0; i < 300; ++i) ASSERT_NO_THROW(index.rescan());
  stop = true;
  churner.join();
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(misses.load(), 0u);
  EXPECT_EQ(path_of(index.find(stable)), "/stable/child");
}

TEST(CgroupIndex, explains_a_missing_mount_point) {
  CgroupIndex index("/nonexistent/podgauge/cgroup");
  try {
    index.rescan();
    FAIL() << "expected CgroupError";
  } catch (const CgroupError& error) {
    EXPECT_THAT(error.what(), HasSubstr("cannot open cgroup hierarchy /nonexistent/podgauge/cgroup"));
    EXPECT_THAT(error.what(), HasSubstr("mounted"));
  }
  EXPECT_FALSE(index.lookup(1).has_value()) << "lookups report a miss instead of throwing";
}

// Removes the test cgroup however the test ends.
class ScopedCgroup {
 public:
  explicit ScopedCgroup(fs::path path) : path_(std::move(path)) {
    if (::mkdir(path_.c_str(), 0755) != 0) throw std::runtime_error("mkdir " + path_.string() + " failed");
  }
  ~ScopedCgroup() { remove(); }
  void remove() {
    if (!removed_) ::rmdir(path_.c_str());
    removed_ = true;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  bool removed_ = false;
};

TEST(CgroupIndex, resolves_a_real_v2_cgroup_and_keeps_its_tombstone) {
  if (::geteuid() != 0) GTEST_FAIL() << "creating cgroups needs root: run the tests as root";
  auto hierarchies = CgroupHierarchies::discover();
  const CgroupHierarchy* v2 = hierarchies.default_hierarchy();
  if (v2 == nullptr) GTEST_FAIL() << "no cgroup v2 hierarchy mounted: mount cgroup2 (hybrid hosts have it at /sys/fs/cgroup/unified)";
  auto own = process_cgroup_path(*v2, read_process_cgroups());
  ASSERT_TRUE(own.has_value()) << "this process's v2 cgroup is not visible below " << v2->mount_point;

  std::string relative = (*own == "/" ? "" : *own) + "/podgauge-index-test-" + random_suffix();
  ScopedCgroup cgroup(v2->absolute_path(relative));
  CgroupId id = inode_of(cgroup.path());

  CgroupIndex index(v2->mount_point);
  auto entry = index.lookup(id);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(*entry->path, relative);
  EXPECT_FALSE(entry->removed);

  cgroup.remove();
  index.rescan();
  entry = index.find(id);
  ASSERT_TRUE(entry.has_value());
  EXPECT_TRUE(entry->removed);
  EXPECT_EQ(*entry->path, relative);
}

}  // namespace
}  // namespace podgauge::cgroup
