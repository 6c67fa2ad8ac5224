#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

extern char** environ;

namespace podgauge::itest {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::pair<Fd, Fd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  return {Fd(fds[0]), Fd(fds[1])};
}

Fd open_or_throw(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path.string());
  return Fd(fd);
}

std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path_env = std::getenv("PATH");
  std::istringstream dirs(path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  throw std::runtime_error("cannot find program '" + name + "' in $PATH — is it installed?");
}

// Why the child failed before exec, sent back through a close-on-exec pipe.
struct ChildFailure {
  int stage;  // one of the Stage values
  int index;  // which cgroup, for Stage::JoinCgroup
  int error;  // errno
};
enum Stage : int { JoinCgroup = 1, Redirect = 2, ChangeDir = 3, Exec = 4 };

// Async-signal-safe decimal formatting for use between fork and exec.
std::size_t format_pid(pid_t pid, char* buffer) {
  char digits[16];
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0);
  for (std::size_t i = 0; i < n; ++i) buffer[i] = digits[n - 1 - i];
  return n;
}

[[noreturn]] void child_fail(int report_fd, Stage stage, int index) {
  const ChildFailure failure{stage, index, errno};
  [[maybe_unused]] ssize_t ignored = ::write(report_fd, &failure, sizeof failure);
  ::_exit(127);
}

// Output collected from one pipe by a background thread.
struct CapturedStream {
  std::mutex mutex;
  std::condition_variable changed;
  std::string text;               // everything
  std::deque<std::string> lines;  // complete lines not yet handed out
  std::string partial;            // bytes after the last '\n'
  bool eof = false;
  std::thread reader;

  void append(const char* data, std::size_t size) {
    std::lock_guard lock(mutex);
    text.append(data, size);
    for (std::size_t i = 0; i < size; ++i) {
      if (data[i] == '\n') {
        lines.push_back(std::move(partial));
        partial.clear();
      } else {
        partial.push_back(data[i]);
      }
    }
    changed.notify_all();
  }
  void finish() {
    std::lock_guard lock(mutex);
    if (!partial.empty()) lines.push_back(std::exchange(partial, {}));
    eof = true;
    changed.notify_all();
  }
};

}  // namespace

std::string ExitStatus::describe() const {
  if (exited) return "exited with code " + std::to_string(code);
  return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
}

struct ChildProcess::Impl {
  ProcessSpec spec;
  pid_t pid = -1;
  std::optional<ExitStatus> status;
  Fd stdin_fd;
  CapturedStream out, err;
  Fd out_fd, err_fd;  // read ends, owned by the reader threads while they run
  std::atomic<bool> stop_readers{false};

  CapturedStream& stream(Stream s) { return s == Stream::Stdout ? out : err; }

  void start_reader(CapturedStream& stream, Fd& fd) {
    if (!fd) {
      stream.finish();
      return;
    }
    stream.reader = std::thread([this, &stream, raw = fd.get()] {
      char buffer[8192];
      pollfd p{raw, POLLIN, 0};
      // Poll with a timeout so a grandchild holding the pipe open cannot block shutdown.
      while (!stop_readers.load()) {
        const int ready = ::poll(&p, 1, 50);
        if (ready < 0 && errno != EINTR) break;
        if (ready <= 0) continue;
        const ssize_t n = ::read(raw, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        stream.append(buffer, static_cast<std::size_t>(n));
      }
      stream.finish();
    });
  }

  bool reap(int options) {
    if (status) return true;
    int raw = 0;
    rusage usage{};
    pid_t r;
    do {
      r = ::wait4(pid, &raw, options, &usage);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return false;
    if (r < 0) throw std::system_error(errno, std::generic_category(), "wait4");
    ExitStatus s;
    s.exited = WIFEXITED(raw);
    s.code = s.exited ? WEXITSTATUS(raw) : -1;
    s.signal = WIFSIGNALED(raw) ? WTERMSIG(raw) : 0;
    auto to_ns = [](const timeval& tv) {
      return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
    };
    s.cpu_time = to_ns(usage.ru_utime) + to_ns(usage.ru_stime);
    status = s;
    return true;
  }

  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (reap(WNOHANG)) return status;
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(2ms);
    }
  }

  void join_readers() {
    // Let readers drain what the exited child left, then stop them.
    const auto deadline = Clock::now() + 500ms;
    for (CapturedStream* s : {&out, &err}) {
      std::unique_lock lock(s->mutex);
      s->changed.wait_until(lock, deadline, [&] { return s->eof; });
    }
    stop_readers = true;
    for (CapturedStream* s : {&out, &err})
      if (s->reader.joinable()) s->reader.join();
    out_fd.reset();
    err_fd.reset();
  }

  void spawn() {
    if (spec.argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
    const std::string program = resolve_program(spec.argv[0]);

    // Everything the child needs is prepared here: between fork and exec only
    // async-signal-safe calls are allowed (the test process has threads).
    std::vector<char*> argv;
    for (auto& a : spec.argv) argv.push_back(a.data());
    argv.push_back(nullptr);

    std::vector<std::string> env_storage;
    for (char** e = environ; *e; ++e) {
      std::string_view entry(*e);
      const auto eq = entry.find('=');
      if (spec.env.count(std::string(entry.substr(0, eq)))) continue;
      env_storage.emplace_back(entry);
    }
    for (auto& [k, v] : spec.env) env_storage.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);

    std::vector<std::string> procs_files;
    for (auto& dir : spec.cgroups) procs_files.push_back((dir / "cgroup.procs").string());

    Fd in_read, out_write, err_write;
    if (spec.stdin_pipe) {
      std::tie(in_read, stdin_fd) = make_pipe();
    } else {
      in_read = open_or_throw("/dev/null", O_RDONLY);
    }
    auto make_output = [](OutputMode mode, const fs::path& file, Fd& read_end, Fd& write_end) {
      switch (mode) {
        case OutputMode::Capture:
          std::tie(read_end, write_end) = make_pipe();
          break;
        case OutputMode::File:
          if (file.empty())
            throw std::invalid_argument("ChildProcess: OutputMode::File without a file name");
          write_end = open_or_throw(file, O_WRONLY | O_CREAT | O_TRUNC);
          break;
        case OutputMode::Discard:
          write_end = open_or_throw("/dev/null", O_WRONLY);
          break;
        case OutputMode::Inherit:
          break;
      }
    };
    make_output(spec.stdout_mode, spec.stdout_file, out_fd, out_write);
    make_output(spec.stderr_mode, spec.stderr_file, err_fd, err_write);

    auto [report_read, report_write] = make_pipe();
    const pid_t parent = ::getpid();
    const char* workdir = spec.working_dir.empty() ? nullptr : spec.working_dir.c_str();
    const bool pdeathsig = spec.kill_with_parent;

    pid = ::fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
      const int report = report_write.get();
      ::setpgid(0, 0);
      if (pdeathsig) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);  // parent already gone
      }
      // Undo what the test process may have set up (gtest, httplib ignore SIGPIPE).
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD}) ::signal(sig, SIG_DFL);

      char pid_text[16];
      const std::size_t pid_len = format_pid(::getpid(), pid_text);
      for (std::size_t i = 0; i < procs_files.size(); ++i) {
        const int fd = ::open(procs_files[i].c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ::write(fd, pid_text, pid_len) < 0)
          child_fail(report, JoinCgroup, static_cast<int>(i));
        ::close(fd);
      }
      if (::dup2(in_read.get(), STDIN_FILENO) < 0) child_fail(report, Redirect, 0);
      if (out_write && ::dup2(out_write.get(), STDOUT_FILENO) < 0) child_fail(report, Redirect, 1);
      if (err_write && ::dup2(err_write.get(), STDERR_FILENO) < 0) child_fail(report, Redirect, 2);
      if (workdir && ::chdir(workdir) != 0) child_fail(report, ChangeDir, 0);
      ::execve(program.c_str(), argv.data(), envp.data());
      child_fail(report, Exec, 0);
    }

    // Parent: close the child's ends, then learn whether exec happened (EOF) or not.
    report_write.reset();
    in_read.reset();
    out_write.reset();
    err_write.reset();
    ChildFailure failure{};
    ssize_t n;
    do {
      n = ::read(report_read.get(), &failure, sizeof failure);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof failure)) {
      reap(0);
      std::string what;
      switch (failure.stage) {
        case JoinCgroup:
          what = "child cannot join cgroup " + procs_files.at(failure.index);
          break;
        case Redirect:
          what = "child cannot redirect stdio";
          break;
        case ChangeDir:
          what = "child cannot chdir to " + spec.working_dir.string();
          break;
        default:
          what = "cannot exec " + program;
          break;
      }
      throw std::system_error(failure.error, std::generic_category(), what);
    }
    start_reader(out, out_fd);
    start_reader(err, err_fd);
  }
};

ChildProcess::ChildProcess(ProcessSpec spec) : impl_(std::make_unique<Impl>()) {
  impl_->spec = std::move(spec);
  impl_->spawn();
}

ChildProcess::ChildProcess(std::vector<std::string> argv)
    : ChildProcess(ProcessSpec{.argv = std::move(argv)}) {}

ChildProcess::~ChildProcess() {
  try {
    if (impl_->pid > 0 && !impl_->status) stop();
  } catch (const std::exception&) {
  }
  impl_->stdin_fd.reset();
  impl_->join_readers();
}

pid_t ChildProcess::pid() const { return impl_->pid; }

bool ChildProcess::running() { return !impl_->reap(WNOHANG); }

std::optional<ExitStatus> ChildProcess::wait(std::chrono::milliseconds timeout) {
  return impl_->wait_for(timeout);
}

std::optional<ExitStatus> ChildProcess::exit_status() const { return impl_->status; }

void ChildProcess::kill(int sig) {
  // An unreaped child (even a zombie) keeps its pid, so this never hits a stranger.
  if (!impl_->status) ::kill(impl_->pid, sig);
}

void ChildProcess::kill_group(int sig) {
  if (!impl_->status) ::kill(-impl_->pid, sig);
}

ExitStatus ChildProcess::stop(std::chrono::milliseconds grace) {
  if (impl_->status) return *impl_->status;
  kill_group(SIGTERM);
  if (auto s = impl_->wait_for(grace)) return *s;
  kill_group(SIGKILL);
  impl_->reap(0);
  return *impl_->status;
}

std::optional<std::string> ChildProcess::read_line(Stream stream,
                                                   std::chrono::milliseconds timeout) {
  const OutputMode mode =
      stream == Stream::Stdout ? impl_->spec.stdout_mode : impl_->spec.stderr_mode;
  if (mode != OutputMode::Capture)
    throw std::logic_error("ChildProcess::read_line needs OutputMode::Capture");
  CapturedStream& s = impl_->stream(stream);
  std::unique_lock lock(s.mutex);
  s.changed.wait_for(lock, timeout, [&] { return !s.lines.empty() || s.eof; });
  if (s.lines.empty()) return std::nullopt;
  std::string line = std::move(s.lines.front());
  s.lines.pop_front();
  return line;
}

std::optional<std::string> ChildProcess::read_stdout_line(std::chrono::milliseconds timeout) {
  return read_line(Stream::Stdout, timeout);
}

std::optional<std::string> ChildProcess::read_stderr_line(std::chrono::milliseconds timeout) {
  return read_line(Stream::Stderr, timeout);
}

std::optional<std::string> ChildProcess::wait_for_line(
    Stream stream, const std::function<bool(const std::string&)>& match,
    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) return std::nullopt;
    auto line = read_line(stream, left);
    if (!line) {
      // End of output: nothing more can match.
      CapturedStream& s = impl_->stream(stream);
      std::lock_guard lock(s.mutex);
      if (s.eof) return std::nullopt;
      continue;
    }
    if (match(*line)) return line;
  }
}

namespace {
std::string text_of(const OutputMode mode, CapturedStream& s, const fs::path& file) {
  if (mode == OutputMode::File) {
    std::ifstream in(file);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::lock_guard lock(s.mutex);
  return s.text;
}
}  // namespace

std::string ChildProcess::stdout_text() const {
  return text_of(impl_->spec.stdout_mode, impl_->out, impl_->spec.stdout_file);
}

std::string ChildProcess::stderr_text() const {
  return text_of(impl_->spec.stderr_mode, impl_->err, impl_->spec.stderr_file);
}

void ChildProcess::write_stdin(std::string_view data) {
  if (!impl_->stdin_fd) throw std::logic_error("ChildProcess: stdin is not a pipe (or closed)");
  // Block SIGPIPE in this thread so a child that exits early gives EPIPE, not a dead test.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  int error = 0;
  while (!data.empty()) {
    const ssize_t n = ::write(impl_->stdin_fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      error = errno;
      break;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  if (error == EPIPE) {
    const timespec zero{0, 0};
    ::sigtimedwait(&pipe_set, nullptr, &zero);  // discard the pending SIGPIPE
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (error) throw std::system_error(error, std::generic_category(), "write to child stdin");
}

void ChildProcess::close_stdin() { impl_->stdin_fd.reset(); }

bool ChildProcess::wait_for_output_end(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  bool ended = true;
  for (CapturedStream* s : {&impl_->out, &impl_->err}) {
    std::unique_lock lock(s->mutex);
    ended = s->changed.wait_until(lock, deadline, [&] { return s->eof; }) && ended;
  }
  return ended;
}

RunResult run_process(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                      std::string_view stdin_data) {
  ChildProcess child(ProcessSpec{.argv = std::move(argv), .stdin_pipe = true});
  try {
    child.write_stdin(stdin_data);
  } catch (const std::system_error&) {
    // The program did not read all of stdin; its exit status tells the rest.
  }
  child.close_stdin();
  auto status = child.wait(timeout);
  if (!status) status = child.stop(0ms);
  // Collect output only after exit and once the pipes are drained.
  RunResult result{*status, {}, {}};
  child.wait_for_output_end(2s);
  result.out = child.stdout_text();
  result.err = child.stderr_text();
  return result;
}

}  // namespace podgauge::itest
