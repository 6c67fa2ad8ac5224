#include "podgauge/agent/process_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <unordered_set>

#include "podgauge/agent/proc_stat.h"
#include "podgauge/cgroup/hierarchy.h"
#include "podgauge/loader/owned_fd.h"

namespace podgauge::agent {

namespace {

// The whole of a small procfs file into `buf` (reused across files), read from its start (an
// open file is generated afresh at offset 0). Procfs generates these in one go: a read shorter
// than asked for returned all of it, so most files take one read, not two.
bool pread_small(int fd, std::string& buf) {
  if (buf.size() < 4096) buf.resize(4096);
  size_t len = 0;
  while (true) {
    const ssize_t n = pread(fd, buf.data() + len, buf.size() - len, off_t(len));
    if (n < 0) return false;
    len += size_t(n);
    if (n == 0 || len < buf.size()) break;
    buf.resize(buf.size() * 2);
  }
  buf.resize(len);
  return true;
}

// The same for a file opened, read once and closed.
bool read_small(int dirfd, const char* name, std::string& buf) {
  loader::OwnedFd fd(openat(dirfd, name, O_RDONLY | O_CLOEXEC));
  return fd && pread_small(fd.get(), buf);
}

// Each scan's stat files: those kept open from the last scan (`open`, pid -> fd) are re-read;
// the others are opened. What this scan read is kept for the next (`next`), up to `max`; the
// files of processes not seen again are closed.
struct StatFiles {
  std::unordered_map<int32_t, int>* open = nullptr;  // null: open, read, close (one-shot scans)
  std::unordered_map<int32_t, int> next;
  std::size_t max = 0;

  bool read(int dfd, int32_t pid, const char* rel, std::string& buf) {
    if (open) {
      if (auto it = open->find(pid); it != open->end()) {
        const int fd = it->second;
        open->erase(it);
        if (pread_small(fd, buf)) {
          next.emplace(pid, fd);
          return true;
        }
        ::close(fd);  // the process exited (its pid may be another's now)
      }
    }
    const int fd = openat(dfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = pread_small(fd, buf);
    if (ok && open && next.size() < max && next.emplace(pid, fd).second) return true;
    ::close(fd);
    return ok;
  }
  // Closes what was not read this scan and hands the rest on.
  void finish() {
    if (!open) return;
    for (const auto& [pid, fd] : *open) ::close(fd);
    *open = std::move(next);
    next.clear();
  }
};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

const long kTicks = sysconf(_SC_CLK_TCK);
const long kPage = sysconf(_SC_PAGESIZE);

}  // namespace

std::string runtime_process_kind(std::string_view comm, std::string_view exe) {
  for (std::string_view name : {comm, exe}) {
    if (starts_with(name, "containerd-shim") || starts_with(name, "docker-containe"))
      return "containerd-shim";
    if (name == "conmon") return "conmon";
    if (name == "runc") return "runc";
    if (name == "crun") return "crun";
    if (name == "dockerd") return "dockerd";
  }
  return "";
}

uint64_t host_pid_namespace(const std::filesystem::path& proc_root) {
  struct stat st {};
  if (stat((proc_root / "1/ns/pid").c_str(), &st) == 0) return st.st_ino;
  // pid 1's namespace links can be out of reach (a ptrace-restricted init, LSMs). One NSpid
  // entry means this process sits in the namespace the /proc mount belongs to: the host's.
  std::ifstream status(proc_root / "self/status");
  const std::string text((std::istreambuf_iterator<char>(status)), {});
  if (parse_nspid(text).size() == 1 && stat((proc_root / "self/ns/pid").c_str(), &st) == 0)
    return st.st_ino;
  return 0;
}

namespace {

enum class Remembered { no, all_but_cgroup, yes };

// One pass over /proc. `known` fills what it remembers of a process and says how much; `learn`
// sees each process whose cgroup or more was read. Files are opened by "<pid>/<name>" from the
// /proc directory, not through a directory fd per process (two system calls fewer each).
template <typename Known, typename Learn>
std::vector<ProcessSample> scan(const std::filesystem::path& proc_root, StatFiles& stats, Known known,
                                Learn learn) {
  std::vector<ProcessSample> out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(proc_root.c_str()), closedir);
  if (!dir) return out;
  const int dfd = dirfd(dir.get());
  std::string text;
  char name[64];
  while (dirent* de = readdir(dir.get())) {
    if (de->d_name[0] < '1' || de->d_name[0] > '9') continue;
    const size_t dlen = strnlen(de->d_name, sizeof name - 16);
    std::memcpy(name, de->d_name, dlen);
    name[dlen] = '/';
    auto file = [&](const char* f) {
      std::strcpy(name + dlen + 1, f);
      return name;
    };
    const int32_t dir_pid = int32_t(std::strtol(de->d_name, nullptr, 10));
    if (!stats.read(dfd, dir_pid, file("stat"), text)) continue;
    const auto st = parse_proc_stat(text);
    if (!st) continue;
    ProcessSample s;
    s.pid = st->pid;
    s.ppid = st->ppid;
    s.comm = st->comm;
    s.cpu_ns = (st->utime_ticks + st->stime_ticks) * (1'000'000'000ull / uint64_t(kTicks));
    s.rss_bytes = st->rss_pages > 0 ? uint64_t(st->rss_pages) * uint64_t(kPage) : 0;
    s.start_ticks = st->start_ticks;
    const Remembered remembered = known(s);
    if (remembered == Remembered::no) {
      struct stat ns {};
      if (fstatat(dfd, file("ns/pid"), &ns, 0) == 0) s.pid_ns = ns.st_ino;
      if (read_small(dfd, file("status"), text)) {
        const auto nspid = parse_nspid(text);
        if (!nspid.empty()) s.ns_pid = nspid.back();
      }
    }
    if (remembered != Remembered::yes && read_small(dfd, file("cgroup"), text)) {
      for (const auto& e : cgroup::parse_process_cgroups(text)) {
        if (auto id = cgroup::parse_kubelet_path(cgroup::strip_namespace_ascent(e.path))) {
          s.identity = *id;
          break;
        }
      }
    }
    if (remembered == Remembered::no) {
      std::string exe;
      char link[4096];
      const ssize_t n = readlinkat(dfd, file("exe"), link, sizeof link - 1);
      if (n > 0) {
        exe.assign(link, size_t(n));
        if (auto slash = exe.rfind('/'); slash != std::string::npos) exe.erase(0, slash + 1);
        // A deleted executable reads as "<name> (deleted)".
        if (auto del = exe.find(" (deleted)"); del != std::string::npos) exe.erase(del);
      }
      s.runtime_process = runtime_process_kind(s.comm, exe);
    }
    if (remembered != Remembered::yes) learn(s);
    out.push_back(std::move(s));
  }
  stats.finish();
  return out;
}

}  // namespace

std::vector<ProcessSample> scan_processes(const std::filesystem::path& proc_root) {
  StatFiles one_shot;
  return scan(proc_root, one_shot, [](ProcessSample&) { return Remembered::no; }, [](const ProcessSample&) {});
}

ProcessScanner::~ProcessScanner() {
  for (const auto& [pid, fd] : stat_fds_) ::close(fd);
}

std::vector<ProcessSample> ProcessScanner::scan(const CgroupMoves& moves) {
  const bool all_cgroups = !moves.complete || scans_++ % kFullCgroupEvery == 0;
  std::unordered_set<int32_t> moved;
  if (!all_cgroups) moved.insert(moves.tgids.begin(), moves.tgids.end());
  std::unordered_map<int32_t, Known> next;
  next.reserve(known_.size());
  StatFiles stats{&stat_fds_, {}, kMaxOpenStat};
  auto out = podgauge::agent::scan(
      proc_root_, stats,
      [&](ProcessSample& s) {
        auto it = known_.find(s.pid);
        if (it == known_.end() || it->second.start_ticks != s.start_ticks || it->second.comm != s.comm)
          return Remembered::no;
        s.pid_ns = it->second.pid_ns;
        s.ns_pid = it->second.ns_pid;
        s.runtime_process = it->second.runtime_process;
        const bool cgroup_too = !all_cgroups && !moved.count(s.pid);
        if (cgroup_too) s.identity = it->second.identity;
        next.emplace(s.pid, std::move(it->second));
        return cgroup_too ? Remembered::yes : Remembered::all_but_cgroup;
      },
      [&](const ProcessSample& s) {
        next.insert_or_assign(s.pid, Known{s.start_ticks, s.comm, s.pid_ns, s.ns_pid, s.runtime_process, s.identity});
      });
  known_ = std::move(next);  // exited processes are forgotten
  return out;
}

}  // namespace podgauge::agent
