#include "podgauge/cgroup/file_reader.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "podgauge/cgroup/error.h"
#include "unique_fd.h"

namespace podgauge::cgroup {

namespace {

constexpr std::size_t kMaxFile = 1u << 20;

// ENODEV: the cgroup is being (or has been) removed; EOPNOTSUPP: PSI disabled at runtime (psi=0).
bool absent(int err) { return err == ENOENT || err == ENODEV || err == EOPNOTSUPP; }

[[noreturn]] void fail(const char* what, const std::string& name, int err) {
  throw CgroupError(std::string(what) + " " + name + ": " + std::strerror(err) +
                    (err == EACCES ? " — run as root or add CAP_DAC_READ_SEARCH" : ""));
}

std::size_t soft_open_limit() noexcept {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 1024;
  return std::size_t(rl.rlim_cur);
}

}  // namespace

std::size_t raise_open_file_limit() noexcept {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);  // best effort: the reader adapts to whatever is in force
  }
  return soft_open_limit();
}

FileReader::FileReader(bool keep_open, std::size_t max_open) : keep_open_(keep_open), max_open_(max_open) {
  static std::atomic<std::uint64_t> readers{0};
  id_ = ++readers;
  if (max_open_ == 0) {
    const std::size_t soft = soft_open_limit();
    max_open_ = soft > 512 ? soft - 256 : soft / 2;
  }
}

FileReader::~FileReader() {
  for (auto& [name, e] : files_)
    if (e.fd >= 0) ::close(e.fd);
}

int FileReader::open_file(const std::string& name) {
  ++opens_;
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && !absent(errno)) fail("cannot open", name, errno);
  return fd;
}

std::optional<std::string_view> FileReader::read_fd(int fd, const std::string& name) {
  buf_.resize(4096);
  std::size_t len = 0;
  while (true) {
    const ssize_t n = ::pread(fd, buf_.data() + len, buf_.size() - len, off_t(len));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (absent(errno)) return std::nullopt;
      fail("cannot read", name, errno);
    }
    if (n == 0) break;
    len += std::size_t(n);
    // kernfs and procfs seq_files hand over all they generated that fits: a short read is the
    // end. Asking again to see 0 would regenerate the file (seq_file's traverse() on a pread at
    // a new offset), doubling the kernel's cost of every read (memory.stat walks the cgroup).
    if (len < buf_.size()) break;
    if (len == buf_.size()) {
      if (buf_.size() >= kMaxFile) throw CgroupError(name + ": larger than 1 MiB");
      buf_.resize(buf_.size() * 2);
    }
  }
  return std::string_view(buf_.data(), len);
}

std::optional<std::string_view> FileReader::read(const std::filesystem::path& file) {
  return read_name(file.native());
}

std::optional<std::string_view> FileReader::read(const CgroupDir& dir, std::string_view name) {
  const std::string& path = dir.path_;
  const std::size_t prefix = path.empty() || path.back() == '/' ? path.size() : path.size() + 1;
  if (keep_open_) {
    if (dir.reader_ != id_ || dir.epoch_ != epoch_) {
      dir.known_count_ = 0;
      dir.reader_ = id_;
      dir.epoch_ = epoch_;
    }
    // Every entry remembered here is "<path>/<some name>": the name alone tells them apart.
    for (std::size_t i = 0; i < dir.known_count_; ++i) {
      Node& node = *static_cast<Node*>(dir.known_[i]);
      const std::string& key = node.first;
      if (key.size() == prefix + name.size() && std::string_view(key).substr(prefix) == name)
        return read_entry(key, node.second);
    }
  }
  name_buf_.assign(path);
  if (prefix > path.size()) name_buf_.push_back('/');
  name_buf_.append(name);
  Node* node = nullptr;
  auto text = read_name(name_buf_, &node);
  if (node && dir.known_count_ < CgroupDir::kKnown) dir.known_[dir.known_count_++] = node;
  return text;
}

std::optional<std::string_view> FileReader::read_entry(const std::string& name, Entry& e) {
  e.generation = generation_;
  if (e.fd < 0) return std::nullopt;
  if (auto text = read_fd(e.fd, name)) return text;
  // The cgroup went away; one made again under the same path has new files.
  ::close(e.fd);
  --open_;
  e.fd = open_file(name);
  if (e.fd < 0) return std::nullopt;
  ++open_;
  return read_fd(e.fd, name);
}

std::optional<std::string_view> FileReader::read_name(const std::string& name, Node** node) {
  if (!keep_open_) {
    const detail::UniqueFd fd(open_file(name));
    if (!fd) return std::nullopt;
    return read_fd(fd.get(), name);
  }
  ++lookups_;
  auto it = files_.find(name);
  if (it != files_.end()) {
    if (node) *node = &*it;
    return read_entry(it->first, it->second);
  }
  const int fd = open_file(name);
  if (fd >= 0 && open_ >= max_open_) {
    const detail::UniqueFd once(fd);  // beyond max_open: read, do not keep
    return read_fd(once.get(), name);
  }
  it = files_.emplace(name, Entry{fd, generation_}).first;
  if (node) *node = &*it;
  if (fd < 0) return std::nullopt;
  ++open_;
  return read_fd(fd, it->first);
}

void FileReader::sweep() {
  bool erased = false;
  for (auto it = files_.begin(); it != files_.end();) {
    const Entry& e = it->second;
    if (e.fd < 0 || e.generation + 1 < generation_) {
      if (e.fd >= 0) {
        ::close(e.fd);
        --open_;
      }
      it = files_.erase(it);
      erased = true;
    } else {
      ++it;
    }
  }
  ++generation_;
  if (erased) ++epoch_;  // entries the CgroupDirs remember may be gone
}

}  // namespace podgauge::cgroup
