#include "podgauge/k8s/exec_credential.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

extern char** environ;

namespace podgauge::k8s {

using nlohmann::json;

namespace {

std::string base64(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(a[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(a[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

std::string hint(const ExecConfig& c) {
  return c.install_hint.empty() ? "" : "\n\n" + c.install_hint;
}

std::string tail(std::string s, std::size_t n = 800) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.size() > n ? "..." + s.substr(s.size() - n) : s;
}

// RFC 3339 with optional fraction and offset, as metav1.Time accepts.
std::optional<std::chrono::system_clock::time_point> parse_time(const std::string& s) {
  std::tm tm{};
  const char* p = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p) return std::nullopt;
  if (*p == '.')
    for (++p; *p >= '0' && *p <= '9'; ++p) {
    }
  long offset = 0;
  if (*p == 'Z' || *p == 'z') {
    ++p;
  } else if (*p == '+' || *p == '-') {
    auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
    if (std::strlen(p) != 6 || !digit(p[1]) || !digit(p[2]) || p[3] != ':' || !digit(p[4]) ||
        !digit(p[5]))
      return std::nullopt;
    const long hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
    offset = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    return std::nullopt;
  }
  if (*p) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm) - offset);
}

std::string string_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

struct Output {
  int exit_status = 0;  // from waitpid
  std::string out, err;
  bool timed_out = false;
};

Output run(const ExecConfig& c) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : c.env) env[k] = v;
  env["KUBERNETES_EXEC_INFO"] = exec_info_json(c);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args{c.command};
  args.insert(args.end(), c.args.begin(), c.args.end());
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  int out_pipe[2], err_pipe[2], exec_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) || pipe2(exec_pipe, O_CLOEXEC))
    throw ExecCredentialError("cannot run exec plugin \"" + c.command +
                              "\": pipe: " + std::strerror(errno));
  pid_t pid = fork();
  if (pid < 0)
    throw ExecCredentialError("cannot run exec plugin \"" + c.command +
                              "\": fork: " + std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);  // its own group, so a timeout kills what it started too
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execvpe(c.command.c_str(), argv.data(), envp.data());
    int e = errno;
    (void)!write(exec_pipe[1], &e, sizeof e);
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_pipe[1]);
  int exec_errno = 0;
  ssize_t got = read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  close(exec_pipe[0]);
  Output o;
  if (got == sizeof exec_errno) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    waitpid(pid, nullptr, 0);
    if (exec_errno == ENOENT)
      throw ExecCredentialError(
          "exec plugin for " + c.user + ": executable \"" + c.command + "\" not found" +
          (c.install_hint.empty() ? " — install it or fix users[].user.exec.command" : hint(c)));
    throw ExecCredentialError("exec plugin for " + c.user + ": cannot execute \"" + c.command +
                              "\": " + std::strerror(exec_errno) + hint(c));
  }
  const auto deadline = std::chrono::steady_clock::now() + c.timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      o.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    int n = poll(fds, 2, static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        (i == 0 ? o.out : o.err).append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  o.exit_status = status;
  return o;
}

}  // namespace

std::string exec_info_json(const ExecConfig& c) {
  json spec = {{"interactive", false}};
  if (c.provide_cluster_info) {
    json cluster = {{"server", c.cluster_server}};
    if (!c.cluster_tls_server_name.empty()) cluster["tls-server-name"] = c.cluster_tls_server_name;
    if (c.cluster_insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    if (!c.cluster_ca_pem.empty()) cluster["certificate-authority-data"] = base64(c.cluster_ca_pem);
    if (!c.cluster_exec_extension_json.empty())
      cluster["config"] = json::parse(c.cluster_exec_extension_json, nullptr, false);
    spec["cluster"] = cluster;
  }
  return json{{"kind", "ExecCredential"}, {"apiVersion", c.api_version}, {"spec", spec}}.dump();
}

ExecCredential run_exec_plugin(const ExecConfig& c) {
  const std::string who = "exec plugin \"" + c.command + "\" for " + c.user;
  if (c.interactive_mode == "Always")
    throw ExecCredentialError(who +
                              " requires an interactive terminal (interactiveMode: Always), "
                              "which podgauge never has — use a plugin mode that works "
                              "non-interactively or a token/client-certificate kubeconfig");
  Output o = run(c);
  if (o.timed_out)
    throw ExecCredentialError(who + " did not finish within " + std::to_string(c.timeout.count()) +
                              " ms and was killed — does it wait for input?" + hint(c));
  if (WIFSIGNALED(o.exit_status))
    throw ExecCredentialError(who + " was killed by signal " +
                              std::to_string(WTERMSIG(o.exit_status)) +
                              (o.err.empty() ? "" : ": " + tail(o.err)) + hint(c));
  if (WEXITSTATUS(o.exit_status) != 0)
    throw ExecCredentialError(who + " failed with exit code " +
                              std::to_string(WEXITSTATUS(o.exit_status)) +
                              (o.err.empty() ? "" : ": " + tail(o.err)) +
                              " — run it by hand to see why (it may need a login)" + hint(c));
  return parse_exec_credential(o.out, c);
}

ExecCredential parse_exec_credential(std::string_view output, const ExecConfig& c) {
  const std::string who = "exec plugin \"" + c.command + "\" for " + c.user;
  json doc = json::parse(output, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    throw ExecCredentialError(who + " printed no ExecCredential JSON on stdout (got \"" +
                              tail(std::string(output), 200) + "\") — the plugin must print a " +
                              c.api_version + " ExecCredential object");
  if (string_field(doc, "kind") != "ExecCredential")
    throw ExecCredentialError(who + " printed kind \"" + string_field(doc, "kind") +
                              "\", expected ExecCredential");
  if (string_field(doc, "apiVersion") != c.api_version)
    throw ExecCredentialError(who + " printed apiVersion \"" + string_field(doc, "apiVersion") +
                              "\" but the kubeconfig asks for \"" + c.api_version +
                              "\" — set users[].user.exec.apiVersion to what the plugin speaks");
  const json status = doc.value("status", json());
  if (!status.is_object())
    throw ExecCredentialError(who + " printed an ExecCredential without status");
  ExecCredential cred;
  for (const char* f : {"token", "clientCertificateData", "clientKeyData", "expirationTimestamp"})
    if (status.contains(f) && !status[f].is_string() && !status[f].is_null())
      throw ExecCredentialError(who + " printed status." + f + " that is not a string");
  cred.token = string_field(status, "token");
  cred.client_certificate_pem = string_field(status, "clientCertificateData");
  cred.client_key_pem = string_field(status, "clientKeyData");
  if (cred.client_certificate_pem.empty() != cred.client_key_pem.empty())
    throw ExecCredentialError(who + " printed " +
                              (cred.client_key_pem.empty()
                                   ? "clientCertificateData without clientKeyData"
                                   : "clientKeyData without clientCertificateData"));
  if (cred.token.empty() && cred.client_certificate_pem.empty())
    throw ExecCredentialError(who +
                              " printed neither status.token nor "
                              "status.clientCertificateData/clientKeyData");
  if (auto exp = string_field(status, "expirationTimestamp"); !exp.empty()) {
    cred.expiration = parse_time(exp);
    if (!cred.expiration)
      throw ExecCredentialError(who + " printed an invalid expirationTimestamp \"" + exp +
                                "\" (want RFC 3339, e.g. 2026-01-02T15:04:05Z)");
  }
  return cred;
}

ExecCredential ExecCredentialProvider::get() {
  std::lock_guard lock(mutex_);
  if (cached_ && (!cached_->expiration || std::chrono::system_clock::now() < *cached_->expiration))
    return *cached_;
  ++runs_;
  cached_ = run_exec_plugin(config_);
  return *cached_;
}

void ExecCredentialProvider::invalidate() {
  std::lock_guard lock(mutex_);
  cached_.reset();
}

std::uint64_t ExecCredentialProvider::runs() const {
  std::lock_guard lock(mutex_);
  return runs_;
}

}  // namespace podgauge::k8s
