#include "podgauge/cgroup/hierarchy.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace podgauge::cgroup {
namespace {

constexpr std::string_view kCgroupMountHint =
    "mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup) or, in a container, "
    "mount the host's /sys/fs/cgroup read-only";

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

template <typename Visit>
void for_each_line(std::string_view text, Visit&& visit) {
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    visit(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

bool is_octal(char c) noexcept { return c >= '0' && c <= '7'; }

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && is_octal(field[i + 1]) && is_octal(field[i + 2]) && is_octal(field[i + 3])) {
      out.push_back(static_cast<char>(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

// Mount/super options that are not controllers.
bool is_v1_non_controller_option(std::string_view option) noexcept {
  static constexpr std::array<std::string_view, 9> kOptions{
      "rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods", "nofavordynmods", "none"};
  return option.empty() || option.starts_with("release_agent=") ||
         std::find(kOptions.begin(), kOptions.end(), option) != kOptions.end();
}

// v1 controller lists ("cpu,cpuacct", "name=systemd") split into controllers and the name.
void split_v1_controllers(std::string_view list, std::vector<std::string>& controllers, std::string& name) {
  for (std::string_view option : split(list, ',')) {
    if (option.starts_with("name=")) {
      name = std::string(option.substr(5));
    } else if (!is_v1_non_controller_option(option)) {
      controllers.emplace_back(option);
    }
  }
  std::sort(controllers.begin(), controllers.end());
}

std::vector<std::string> split_whitespace(std::string_view text) {
  std::vector<std::string> words;
  std::istringstream stream{std::string(text)};
  for (std::string word; stream >> word;) words.push_back(std::move(word));
  std::sort(words.begin(), words.end());
  return words;
}

struct MountinfoCgroup {
  std::string device;  // major:minor, identifies the hierarchy
  CgroupHierarchy hierarchy;
};

// "36 35 98:0 /root /mnt rw,noatime master:1 - cgroup cgroup rw,cpu,cpuacct"
std::optional<MountinfoCgroup> parse_mountinfo_line(std::string_view line, const ControllersReader& read_controllers) {
  std::vector<std::string_view> fields;
  for (std::string_view field : split(line, ' ')) {
    if (!field.empty()) fields.push_back(field);
  }
  auto separator = std::find(fields.begin(), fields.end(), "-");
  if (separator == fields.end() || separator - fields.begin() < 6 || fields.end() - separator < 3) return std::nullopt;
  std::string_view fstype = *(separator + 1);
  std::string_view super_options = fields.end() - separator >= 4 ? *(separator + 3) : std::string_view{};

  MountinfoCgroup mount;
  if (fstype == "cgroup2") {
    mount.hierarchy.version = CgroupVersion::V2;
  } else if (fstype == "cgroup") {
    mount.hierarchy.version = CgroupVersion::V1;
  } else {
    return std::nullopt;
  }
  mount.device = std::string(fields[2]);
  mount.hierarchy.mount_root = unescape_mountinfo(fields[3]);
  mount.hierarchy.mount_point = unescape_mountinfo(fields[4]);
  if (mount.hierarchy.version == CgroupVersion::V1) {
    split_v1_controllers(super_options, mount.hierarchy.controllers, mount.hierarchy.name);
  } else if (read_controllers) {
    if (auto text = read_controllers(mount.hierarchy.mount_point)) mount.hierarchy.controllers = split_whitespace(*text);
  }
  return mount;
}

std::string read_whole_file(const std::filesystem::path& path, std::string_view what_to_do) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    int error = errno;
    throw CgroupError("cannot read " + path.string() + ": " + std::strerror(error) + " — " + std::string(what_to_do));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

}  // namespace

std::string_view to_string(CgroupMode mode) noexcept {
  switch (mode) {
    case CgroupMode::V1: return "v1";
    case CgroupMode::V2: return "v2";
    case CgroupMode::Hybrid: return "hybrid";
  }
  return "unknown";
}

bool CgroupHierarchy::has_controller(std::string_view controller) const noexcept {
  return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
}

std::filesystem::path CgroupHierarchy::absolute_path(std::string_view relative_cgroup_path) const {
  while (relative_cgroup_path.starts_with('/')) relative_cgroup_path.remove_prefix(1);
  if (relative_cgroup_path.empty()) return mount_point;
  return mount_point / relative_cgroup_path;
}

std::optional<std::string> read_controllers_file(const std::filesystem::path& mount_point) {
  std::ifstream file(mount_point / "cgroup.controllers");
  if (!file) return std::nullopt;
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

CgroupHierarchies::CgroupHierarchies(std::vector<CgroupHierarchy> hierarchies) : hierarchies_(std::move(hierarchies)) {
  bool has_v2 = false;
  bool v2_owns_sys_fs_cgroup = false;
  bool has_v1_controllers = false;
  for (const CgroupHierarchy& hierarchy : hierarchies_) {
    if (hierarchy.version == CgroupVersion::V2) {
      has_v2 = true;
      v2_owns_sys_fs_cgroup |= hierarchy.mount_point == "/sys/fs/cgroup";
    } else {
      has_v1_controllers |= !hierarchy.controllers.empty();
    }
  }
  if (!has_v2) {
    mode_ = CgroupMode::V1;
  } else if (has_v1_controllers && !v2_owns_sys_fs_cgroup) {
    mode_ = CgroupMode::Hybrid;
  } else {
    mode_ = CgroupMode::V2;
  }
}

CgroupHierarchies CgroupHierarchies::discover(const std::filesystem::path& mountinfo_path,
                                              const ControllersReader& read_controllers) {
  std::string text = read_whole_file(mountinfo_path, "is /proc mounted? the agent needs the host's /proc");
  try {
    return from_mountinfo(text, read_controllers);
  } catch (const CgroupError&) {
    throw CgroupError("no cgroup filesystem mounted (" + mountinfo_path.string() + " lists no cgroup or cgroup2): " +
                      std::string(kCgroupMountHint));
  }
}

CgroupHierarchies CgroupHierarchies::from_mountinfo(std::string_view mountinfo_text,
                                                    const ControllersReader& read_controllers) {
  std::vector<MountinfoCgroup> mounts;
  for_each_line(mountinfo_text, [&](std::string_view line) {
    auto mount = parse_mountinfo_line(line, read_controllers);
    if (!mount) return;
    // A hierarchy mounted twice (bind mounts) is kept once: the view closest to its root. In a
    // private cgroup namespace (an agent in a pod, with the host's tree mounted too) the own
    // namespace's mount shows "/" and the host's "/../..": more ".." is closer to the real root.
    auto same = std::find_if(mounts.begin(), mounts.end(), [&](const MountinfoCgroup& m) { return m.device == mount->device; });
    auto rank = [](const std::string& root) {
      const size_t ascent = root.size() - strip_namespace_ascent(root).size();
      return std::pair(-static_cast<long>(ascent), root.size());
    };
    if (same == mounts.end()) {
      mounts.push_back(std::move(*mount));
    } else if (rank(mount->hierarchy.mount_root) < rank(same->hierarchy.mount_root)) {
      *same = std::move(*mount);
    }
  });
  if (mounts.empty()) throw CgroupError("no cgroup filesystem mounted: " + std::string(kCgroupMountHint));
  std::vector<CgroupHierarchy> hierarchies;
  hierarchies.reserve(mounts.size());
  for (MountinfoCgroup& mount : mounts) hierarchies.push_back(std::move(mount.hierarchy));
  return CgroupHierarchies(std::move(hierarchies));
}

const CgroupHierarchy* CgroupHierarchies::default_hierarchy() const noexcept {
  auto it = std::find_if(hierarchies_.begin(), hierarchies_.end(),
                         [](const CgroupHierarchy& h) { return h.version == CgroupVersion::V2; });
  return it == hierarchies_.end() ? nullptr : &*it;
}

const CgroupHierarchy* CgroupHierarchies::find_v1(std::string_view controller) const noexcept {
  auto it = std::find_if(hierarchies_.begin(), hierarchies_.end(), [&](const CgroupHierarchy& h) {
    return h.version == CgroupVersion::V1 && h.has_controller(controller);
  });
  return it == hierarchies_.end() ? nullptr : &*it;
}

const CgroupHierarchy* CgroupHierarchies::cpu_accounting_hierarchy() const noexcept {
  if (mode_ == CgroupMode::V2) return default_hierarchy();
  if (const CgroupHierarchy* cpuacct = find_v1("cpuacct")) return cpuacct;
  if (const CgroupHierarchy* cpu = find_v1("cpu")) return cpu;
  return default_hierarchy();
}

const CgroupHierarchy* CgroupHierarchies::memory_hierarchy() const noexcept {
  const CgroupHierarchy* v2 = default_hierarchy();
  if (v2 != nullptr && v2->has_controller("memory")) return v2;
  return find_v1("memory");
}

std::vector<ProcessCgroup> parse_process_cgroups(std::string_view text) {
  std::vector<ProcessCgroup> cgroups;
  for_each_line(text, [&](std::string_view line) {
    std::size_t first = line.find(':');
    if (first == std::string_view::npos) return;
    std::size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) return;
    ProcessCgroup entry;
    std::string_view id_text = line.substr(0, first);
    auto [end, error] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), entry.hierarchy_id);
    if (error != std::errc{} || end != id_text.data() + id_text.size()) return;
    split_v1_controllers(line.substr(first + 1, second - first - 1), entry.controllers, entry.name);
    entry.path = std::string(line.substr(second + 1));
    if (entry.path.empty() || entry.path.front() != '/') return;
    cgroups.push_back(std::move(entry));
  });
  return cgroups;
}

std::string_view strip_namespace_ascent(std::string_view path) noexcept {
  while (path.starts_with("/..") && (path.size() == 3 || path[3] == '/')) path.remove_prefix(3);
  return path.empty() ? std::string_view("/") : path;
}

std::vector<ProcessCgroup> read_process_cgroups(const std::filesystem::path& path) {
  return parse_process_cgroups(read_whole_file(path, "is /proc mounted?"));
}

std::optional<std::string> process_cgroup_path(const CgroupHierarchy& hierarchy,
                                               std::span<const ProcessCgroup> process_cgroups) {
  auto belongs = [&](const ProcessCgroup& entry) {
    if (hierarchy.version == CgroupVersion::V2) return entry.is_v2();
    return !entry.is_v2() && entry.name == hierarchy.name && entry.controllers == hierarchy.controllers;
  };
  auto entry = std::find_if(process_cgroups.begin(), process_cgroups.end(), belongs);
  if (entry == process_cgroups.end()) return std::nullopt;

  std::string_view path = entry->path;
  std::string_view root = hierarchy.mount_root;
  if (root == "/" || root.empty()) return std::string(path);
  if (path == root) return "/";
  if (path.starts_with(root) && path.size() > root.size() && path[root.size()] == '/') {
    return std::string(path.substr(root.size()));
  }
  return std::nullopt;
}

}  // namespace podgauge::cgroup
