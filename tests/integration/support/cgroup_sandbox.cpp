#include "support/cgroup_sandbox.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace podgauge::itest {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string trim_right(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(std::string_view field) {
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      const std::string_view oct = field.substr(i + 1, 3);
      if (oct.size() == 3 &&
          std::all_of(oct.begin(), oct.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out.push_back(static_cast<char>(std::stoi(std::string(oct), nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::system_error(errno, std::generic_category(), "cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const fs::path& path, std::string_view value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(), "cannot open " + path.string());
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int saved = errno;
  ::close(fd);
  if (n < 0)
    throw std::system_error(saved, std::generic_category(),
                            "cannot write '" + std::string(value) + "' to " + path.string());
}

struct Mount {
  fs::path mount_point;
  std::string root;
  bool v2 = false;
  std::set<std::string> options;  // super options: controllers, name=..., rw
};

std::vector<Mount> cgroup_mounts() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) throw std::runtime_error("cannot read /proc/self/mountinfo — is /proc mounted?");
  std::vector<Mount> mounts;
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount_point options [optional...] - fstype source super_options
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream head(line.substr(0, dash));
    std::istringstream tail(line.substr(dash + 3));
    std::string id, parent, devno, root, mount_point, fstype, source, super_options;
    head >> id >> parent >> devno >> root >> mount_point;
    tail >> fstype >> source >> super_options;
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    Mount m;
    m.mount_point = unescape_mountinfo(mount_point);
    m.root = unescape_mountinfo(root);
    m.v2 = fstype == "cgroup2";
    for (auto& opt : split(super_options, ',')) m.options.insert(opt);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

// own_path is relative to the cgroup namespace root, like the mount root; a mount only reaches
// own_path if own_path lies below its root.
std::optional<fs::path> own_dir_under(const Mount& m, const std::string& own_path) {
  if (m.root == "/") return m.mount_point / fs::path(own_path).relative_path();
  if (own_path == m.root) return m.mount_point;
  if (own_path.starts_with(m.root + "/"))
    return m.mount_point / fs::path(own_path.substr(m.root.size() + 1));
  return std::nullopt;
}

std::string random_hex(std::size_t digits) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(digits, '0');
  for (auto& c : out) c = hex[rng() & 0xf];
  return out;
}

fs::path checked_relpath(std::string_view relpath) {
  fs::path rel(relpath);
  if (rel.is_absolute())
    throw std::invalid_argument("cgroup relpath must be relative: " + std::string(relpath));
  for (const auto& part : rel)
    if (part == "..")
      throw std::invalid_argument("cgroup relpath must stay in the sandbox: " +
                                  std::string(relpath));
  return rel;
}

std::vector<pid_t> read_procs(const fs::path& dir) {
  std::vector<pid_t> out;
  std::ifstream in(dir / "cgroup.procs");
  pid_t pid;
  while (in >> pid) out.push_back(pid);
  return out;
}

// Directories of a tree, children before parents, so rmdir can go front to back.
std::vector<fs::path> dirs_deepest_first(const fs::path& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec)) out.push_back(it->path());
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return std::distance(a.begin(), a.end()) > std::distance(b.begin(), b.end());
  });
  out.push_back(root);
  return out;
}

}  // namespace

bool CgroupHierarchy::has_controller(std::string_view controller) const {
  return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
}

std::vector<CgroupHierarchy> discover_cgroup_hierarchies() {
  const std::vector<Mount> mounts = cgroup_mounts();
  std::ifstream in("/proc/self/cgroup");
  if (!in) throw std::runtime_error("cannot read /proc/self/cgroup — kernel without cgroups?");
  std::vector<CgroupHierarchy> out;
  std::string line;
  while (std::getline(in, line)) {
    // hierarchy-id:controller-list:path; the path may itself contain ':'.
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string hierarchy_id = line.substr(0, first);
    const std::string list = line.substr(first + 1, second - first - 1);
    const std::string own_path = line.substr(second + 1);
    const bool v2 = hierarchy_id == "0" && list.empty();
    std::vector<std::string> tokens = v2 ? std::vector<std::string>{} : split(list, ',');

    for (const Mount& m : mounts) {
      if (m.v2 != v2) continue;
      if (!v2 && !std::all_of(tokens.begin(), tokens.end(),
                              [&](const std::string& t) { return m.options.count(t) > 0; }))
        continue;
      auto own_dir = own_dir_under(m, own_path);
      if (!own_dir) continue;
      CgroupHierarchy h;
      h.v2 = v2;
      h.mount_point = m.mount_point;
      h.mount_root = m.root;
      h.own_path = own_path;
      h.own_dir = *own_dir;
      if (v2) {
        h.name = "unified";
        std::error_code ec;
        if (fs::exists(h.own_dir / "cgroup.controllers", ec))
          for (auto& c : split(trim_right(read_file(h.own_dir / "cgroup.controllers")), ' '))
            if (!c.empty()) h.controllers.push_back(c);
      } else {
        std::string name;
        for (const auto& t : tokens) {
          if (t.starts_with("name=")) {
            name += (name.empty() ? "" : ",") + t.substr(5);
          } else {
            name += (name.empty() ? "" : ",") + t;
            h.controllers.push_back(t);
          }
        }
        h.name = name;
      }
      out.push_back(std::move(h));
      break;  // a hierarchy mounted twice is used once
    }
  }
  return out;
}

// ---- KubeletNames ---------------------------------------------------------------------------

std::string KubeletNames::qos_name(QosClass qos) {
  switch (qos) {
    case QosClass::Guaranteed:
      return "guaranteed";
    case QosClass::Burstable:
      return "burstable";
    case QosClass::BestEffort:
      return "besteffort";
  }
  return "burstable";
}

std::string KubeletNames::random_pod_uid() {
  std::string h = random_hex(32);
  h[12] = '4';                                                  // version 4
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];  // RFC 4122 variant
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20, 12);
}

std::string KubeletNames::random_container_id() { return random_hex(64); }

std::string KubeletNames::systemd_pod(QosClass qos, std::string_view pod_uid) {
  std::string uid(pod_uid);
  std::replace(uid.begin(), uid.end(), '-', '_');  // '-' is systemd's slice separator
  if (qos == QosClass::Guaranteed) return "kubepods.slice/kubepods-pod" + uid + ".slice";
  const std::string q = qos_name(qos);
  return "kubepods.slice/kubepods-" + q + ".slice/kubepods-" + q + "-pod" + uid + ".slice";
}

std::string KubeletNames::systemd_container(QosClass qos, std::string_view pod_uid,
                                            std::string_view runtime,
                                            std::string_view container_id) {
  return systemd_pod(qos, pod_uid) + "/" + std::string(runtime) + "-" + std::string(container_id) +
         ".scope";
}

std::string KubeletNames::systemd_crio_conmon(QosClass qos, std::string_view pod_uid,
                                              std::string_view container_id) {
  return systemd_pod(qos, pod_uid) + "/crio-conmon-" + std::string(container_id) + ".scope";
}

std::string KubeletNames::containerd_colon_container(QosClass qos, std::string_view pod_uid,
                                                     std::string_view container_id) {
  return systemd_pod(qos, pod_uid) + ":cri-containerd:" + std::string(container_id);
}

std::string KubeletNames::cgroupfs_pod(QosClass qos, std::string_view pod_uid) {
  if (qos == QosClass::Guaranteed) return "kubepods/pod" + std::string(pod_uid);
  return "kubepods/" + qos_name(qos) + "/pod" + std::string(pod_uid);
}

std::string KubeletNames::cgroupfs_container(QosClass qos, std::string_view pod_uid,
                                             std::string_view container_id) {
  return cgroupfs_pod(qos, pod_uid) + "/" + std::string(container_id);
}

// ---- CgroupSandbox --------------------------------------------------------------------------

CgroupSandbox::CgroupSandbox() : CgroupSandbox(Options{}) {}

CgroupSandbox::CgroupSandbox(Options options)
    : options_(std::move(options)),
      name_("podgauge-test-" + std::to_string(::getpid()) + "-" + random_hex(8)) {
  const auto all = discover_cgroup_hierarchies();
  const bool any_v1 = std::any_of(all.begin(), all.end(), [](auto& h) { return !h.v2; });
  for (const auto& h : all) {
    const bool wanted =
        h.v2 ? (options_.include_unified || !any_v1)
             : std::any_of(options_.controllers.begin(), options_.controllers.end(),
                           [&](const std::string& c) { return h.has_controller(c); });
    if (wanted) hierarchies_.push_back(h);
  }
  if (hierarchies_.empty())
    throw std::runtime_error(
        "no cgroup hierarchy found for the requested controllers — mount cgroup v1 controllers "
        "or cgroup2 (see /proc/self/mountinfo)");
  if (::geteuid() != 0)
    throw std::runtime_error("creating cgroups needs root — run the integration tests as root");

  try {
    for (auto& h : hierarchies_) {
      const fs::path root = h.own_dir / name_;
      if (::mkdir(root.c_str(), 0755) != 0)
        throw std::system_error(errno, std::generic_category(),
                                "cannot create cgroup " + root.string());
      if (h.v2) {
        // What the sandbox's children can get; this is what limits depend on.
        h.controllers.clear();
        for (auto& c : split(trim_right(read_file(root / "cgroup.controllers")), ' '))
          if (!c.empty()) h.controllers.push_back(c);
      } else if (h.has_controller("cpuset")) {
        write_file(root / "cpuset.cpus", trim_right(read_file(h.own_dir / "cpuset.cpus")));
        write_file(root / "cpuset.mems", trim_right(read_file(h.own_dir / "cpuset.mems")));
      }
    }
  } catch (...) {
    cleanup();
    throw;
  }
}

CgroupSandbox::~CgroupSandbox() { cleanup(); }

bool CgroupSandbox::has(std::string_view hierarchy) const {
  try {
    find(hierarchy);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

const CgroupHierarchy& CgroupSandbox::find(std::string_view hierarchy) const {
  for (const auto& h : hierarchies_)
    if (h.name == hierarchy) return h;
  if (hierarchy == "unified" || hierarchy == "v2")
    for (const auto& h : hierarchies_)
      if (h.v2) return h;
  for (const auto& h : hierarchies_)
    if (!h.v2 && h.has_controller(hierarchy)) return h;
  // cgroup v2 folds cpuacct into cpu.
  const std::string_view v2_name = hierarchy == "cpuacct" ? "cpu" : hierarchy;
  for (const auto& h : hierarchies_)
    if (h.v2 && h.has_controller(v2_name)) return h;
  std::string known;
  for (const auto& h : hierarchies_) known += (known.empty() ? "" : ", ") + h.name;
  throw std::invalid_argument(
      "cgroup sandbox has no hierarchy '" + std::string(hierarchy) + "' (it has: " + known +
      ") — mount the v1 controller, or on cgroup v2 enable it in the cgroup.subtree_control "
      "of this process's own cgroup");
}

fs::path CgroupSandbox::dir_of(const CgroupHierarchy& h, std::string_view relpath) const {
  fs::path dir = h.own_dir / name_;
  if (!relpath.empty()) dir /= checked_relpath(relpath);
  return dir;
}

void CgroupSandbox::create(std::string_view relpath) {
  const fs::path rel = checked_relpath(relpath);
  for (const auto& h : hierarchies_) {
    fs::path dir = h.own_dir / name_;
    for (const auto& part : rel) {
      if (part.empty()) continue;
      const fs::path parent = dir;
      dir /= part;
      if (h.v2 && !h.controllers.empty()) {
        // Pass controllers down so memory.max etc. exist below; best effort, because a
        // cgroup that already holds processes cannot enable controllers for its children.
        std::string enable;
        for (const auto& wanted : options_.controllers) {
          const std::string c = wanted == "cpuacct" ? "cpu" : wanted;
          if (h.has_controller(c) && enable.find("+" + c + " ") == std::string::npos)
            enable += "+" + c + " ";
        }
        if (!enable.empty()) {
          try {
            write_file(parent / "cgroup.subtree_control", enable);
          } catch (const std::system_error&) {
          }
        }
      }
      if (::mkdir(dir.c_str(), 0755) != 0) {
        if (errno == EEXIST) continue;
        throw std::system_error(errno, std::generic_category(),
                                "cannot create cgroup " + dir.string());
      }
      if (!h.v2 && h.has_controller("cpuset")) {
        write_file(dir / "cpuset.cpus", trim_right(read_file(parent / "cpuset.cpus")));
        write_file(dir / "cpuset.mems", trim_right(read_file(parent / "cpuset.mems")));
      }
    }
  }
}

fs::path CgroupSandbox::path_in(std::string_view hierarchy, std::string_view relpath) const {
  return dir_of(find(hierarchy), relpath);
}

std::uint64_t CgroupSandbox::id_in(std::string_view hierarchy, std::string_view relpath) const {
  const fs::path dir = path_in(hierarchy, relpath);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    throw std::system_error(errno, std::generic_category(), "cannot stat " + dir.string());
  return st.st_ino;
}

std::string CgroupSandbox::path_relative_to_mount(std::string_view hierarchy,
                                                  std::string_view relpath) const {
  const auto& h = find(hierarchy);
  return "/" + dir_of(h, relpath).lexically_relative(h.mount_point).string();
}

std::vector<fs::path> CgroupSandbox::dirs(std::string_view relpath) const {
  std::vector<fs::path> out;
  for (const auto& h : hierarchies_) out.push_back(dir_of(h, relpath));
  return out;
}

void CgroupSandbox::write(std::string_view hierarchy, std::string_view relpath,
                          std::string_view file, std::string_view value) const {
  write_file(path_in(hierarchy, relpath) / file, value);
}

std::string CgroupSandbox::read(std::string_view hierarchy, std::string_view relpath,
                                std::string_view file) const {
  return trim_right(read_file(path_in(hierarchy, relpath) / file));
}

std::uint64_t CgroupSandbox::read_key(std::string_view hierarchy, std::string_view relpath,
                                      std::string_view file, std::string_view key) const {
  const fs::path path = path_in(hierarchy, relpath) / file;
  std::istringstream in(read_file(path));
  std::string k;
  std::uint64_t v;
  while (in >> k >> v)
    if (k == key) return v;
  throw std::runtime_error("no key '" + std::string(key) + "' in " + path.string());
}

std::string CgroupSandbox::create_container(std::string* pod_uid, std::string* container_id) {
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", cid);
  create(rel);
  if (pod_uid) *pod_uid = uid;
  if (container_id) *container_id = cid;
  return rel;
}

void CgroupSandbox::set_cpu_quota(std::string_view relpath, std::int64_t quota_us, std::uint64_t period_us) const {
  if (fs::exists(path_in("cpu", relpath) / "cpu.cfs_quota_us")) {
    write("cpu", relpath, "cpu.cfs_period_us", std::to_string(period_us));
    write("cpu", relpath, "cpu.cfs_quota_us", std::to_string(quota_us < 0 ? -1 : quota_us));
    return;
  }
  write("cpu", relpath, "cpu.max",
        (quota_us < 0 ? std::string("max") : std::to_string(quota_us)) + " " + std::to_string(period_us));
}

void CgroupSandbox::set_memory_limit(std::string_view relpath, std::uint64_t bytes) const {
  const auto& h = find("memory");
  const fs::path dir = dir_of(h, relpath);
  const std::string value = std::to_string(bytes);
  std::error_code ec;
  if (!h.v2) {
    write_file(dir / "memory.limit_in_bytes", value);
    if (fs::exists(dir / "memory.memsw.limit_in_bytes", ec))
      write_file(dir / "memory.memsw.limit_in_bytes", value);
    return;
  }
  if (!fs::exists(dir / "memory.max", ec))
    throw std::runtime_error("no memory.max in " + dir.string() +
                             " — the memory controller is not delegated to the sandbox: enable "
                             "it with `echo +memory > " +
                             (h.own_dir / "cgroup.subtree_control").string() + "`");
  write_file(dir / "memory.max", value);
  if (fs::exists(dir / "memory.swap.max", ec)) write_file(dir / "memory.swap.max", "0");
}

std::uint64_t CgroupSandbox::memory_oom_kills(std::string_view relpath) const {
  const auto& h = find("memory");
  if (!h.v2) return read_key(h.name, relpath, "memory.oom_control", "oom_kill");
  return read_key(h.name, relpath, "memory.events", "oom_kill");
}

std::uint64_t CgroupSandbox::cpuacct_usage_ns(std::string_view relpath) const {
  for (const auto& h : hierarchies_)
    if (!h.v2 && h.has_controller("cpuacct"))
      return std::stoull(read(h.name, relpath, "cpuacct.usage"));
  for (const auto& h : hierarchies_)
    if (h.v2) return read_key("unified", relpath, "cpu.stat", "usage_usec") * 1000;
  throw std::runtime_error("no cpuacct (v1) or unified (v2) hierarchy in the cgroup sandbox");
}

void CgroupSandbox::add_pid(std::string_view relpath, pid_t pid) const {
  for (const auto& h : hierarchies_)
    write_file(dir_of(h, relpath) / "cgroup.procs", std::to_string(pid));
}

std::vector<pid_t> CgroupSandbox::pids(std::string_view hierarchy, std::string_view relpath) const {
  return read_procs(path_in(hierarchy, relpath));
}

void CgroupSandbox::cleanup() noexcept {
  const auto deadline = std::chrono::steady_clock::now() + options_.cleanup_timeout;
  const pid_t self = ::getpid();
  try {
    // 1. Empty the trees: only processes inside our own sandbox are killed.
    for (;;) {
      std::set<pid_t> inside;
      for (const auto& h : hierarchies_)
        for (const auto& dir : dirs_deepest_first(h.own_dir / name_))
          for (pid_t pid : read_procs(dir)) {
            if (pid == self) {
              // A test moved itself in: move it back rather than kill it.
              try {
                write_file(h.own_dir / "cgroup.procs", std::to_string(self));
              } catch (const std::exception& e) {
                std::cerr << "CgroupSandbox: " << e.what() << "\n";
              }
              continue;
            }
            inside.insert(pid);
          }
      if (inside.empty()) break;
      if (std::chrono::steady_clock::now() > deadline) {
        std::cerr << "CgroupSandbox " << name_ << ": " << inside.size()
                  << " process(es) still inside after SIGKILL\n";
        break;
      }
      for (pid_t pid : inside) ::kill(pid, SIGKILL);
      std::this_thread::sleep_for(20ms);
    }
    // 2. Remove directories, children first; EBUSY can linger briefly after the last exit.
    for (const auto& h : hierarchies_) {
      for (const auto& dir : dirs_deepest_first(h.own_dir / name_)) {
        while (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
          if (errno != EBUSY || std::chrono::steady_clock::now() > deadline) {
            std::cerr << "CgroupSandbox: cannot remove " << dir << ": "
                      << std::generic_category().message(errno) << "\n";
            break;
          }
          std::this_thread::sleep_for(20ms);
        }
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "CgroupSandbox " << name_ << " cleanup: " << e.what() << "\n";
  }
}

}  // namespace podgauge::itest
