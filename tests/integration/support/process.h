#pragma once
// Child processes for integration tests: spawned without a shell, optionally placed into
// cgroups before exec (so not a single instruction of the program runs outside them), with
// live line-by-line access to their output.

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podgauge::itest {

enum class OutputMode {
  Capture,  // pipe read by a background thread: read_*_line() and *_text()
  File,     // written to ProcessSpec::stdout_file / stderr_file; *_text() reads the file
  Inherit,  // the test's own stdout/stderr
  Discard,  // /dev/null
};

struct ProcessSpec {
  std::vector<std::string> argv{};           // argv[0] without '/' is looked up in $PATH
  std::map<std::string, std::string> env{};  // added to (or overriding) the test's environment
  // The child writes its pid into <dir>/cgroup.procs of each before exec (CgroupSandbox::dirs).
  std::vector<std::filesystem::path> cgroups{};
  OutputMode stdout_mode = OutputMode::Capture;
  OutputMode stderr_mode = OutputMode::Capture;
  std::filesystem::path stdout_file{};  // for OutputMode::File
  std::filesystem::path stderr_file{};
  bool stdin_pipe = false;              // write_stdin()/close_stdin(); else /dev/null
  std::filesystem::path working_dir{};  // empty: the test's
  // PR_SET_PDEATHSIG(SIGKILL): the child dies if the *thread* that spawned it exits, so a
  // crashed test leaves nothing behind. Turn off when spawning from a short-lived thread.
  bool kill_with_parent = true;
};

struct ExitStatus {
  bool exited = false;  // normal exit: `code` is valid; otherwise killed by `signal`
  int code = -1;
  int signal = 0;
  std::chrono::nanoseconds cpu_time{0};  // user + system time of the child (wait4 rusage)

  bool success() const { return exited && code == 0; }
  bool killed_by(int sig) const { return !exited && signal == sig; }
  std::string describe() const;  // "exited with code 0", "killed by signal 9 (Killed)"
};

/// One spawned program. The child runs in its own process group. The destructor sends SIGTERM
/// to the group, SIGKILL after 2 s, and reaps it.
/// Thread-safety: the read_*_line/*_text calls are safe from any thread; the rest is meant for
/// the owning thread.
class ChildProcess {
 public:
  enum class Stream { Stdout, Stderr };

  /// Spawns the program; throws std::system_error if fork fails or the child cannot join a
  /// cgroup, redirect its output, change directory or exec (the message names which).
  explicit ChildProcess(ProcessSpec spec);
  explicit ChildProcess(std::vector<std::string> argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const;
  /// True until the child has exited (reaps it when it has).
  bool running();
  /// Waits for exit up to `timeout`; nullopt if still running. Idempotent once exited.
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout);
  /// The exit status if the child was already reaped.
  std::optional<ExitStatus> exit_status() const;
  /// Sends `sig` to the child (not its group); no-op once reaped.
  void kill(int sig = SIGTERM);
  /// Sends `sig` to the child's process group (child + its descendants); no-op once reaped.
  void kill_group(int sig);
  /// SIGTERM to the group, SIGKILL after `grace`, then reaps.
  ExitStatus stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

  /// The next complete output line (without '\n'), waiting up to `timeout`. nullopt on
  /// timeout, or at end of output once every line was returned. Only for OutputMode::Capture.
  std::optional<std::string> read_stdout_line(std::chrono::milliseconds timeout);
  std::optional<std::string> read_stderr_line(std::chrono::milliseconds timeout);
  std::optional<std::string> read_line(Stream stream, std::chrono::milliseconds timeout);
  /// Reads lines until one satisfies `match` (returned) or `timeout` passes (nullopt).
  /// Lines read on the way are consumed.
  std::optional<std::string> wait_for_line(Stream stream,
                                           const std::function<bool(const std::string&)>& match,
                                           std::chrono::milliseconds timeout);
  /// Everything written so far (Capture: from memory, File: from the file).
  std::string stdout_text() const;
  std::string stderr_text() const;
  /// Waits until every captured stream reached end of file (all writers closed it).
  bool wait_for_output_end(std::chrono::milliseconds timeout);

  /// Only with ProcessSpec::stdin_pipe. Throws std::system_error on a write error.
  void write_stdin(std::string_view data);
  void close_stdin();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Runs a program to completion: {status, stdout, stderr}. Kills it after `timeout` (then the
/// status says killed by SIGKILL). `stdin_data` is written to its stdin.
struct RunResult {
  ExitStatus status;
  std::string out;
  std::string err;
};
RunResult run_process(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                      std::string_view stdin_data = {});

}  // namespace podgauge::itest
