#include "podgauge/k8s/api_client.h"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace podgauge::k8s {
namespace fs = std::filesystem;

bool LineSplitter::feed(std::string_view chunk,
                        const std::function<bool(std::string_view)>& on_line) {
  while (!chunk.empty()) {
    auto nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      pending_.append(chunk);
      return true;
    }
    std::string_view line;
    if (pending_.empty()) {
      line = chunk.substr(0, nl);
    } else {
      pending_.append(chunk.substr(0, nl));
      line = pending_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool go_on = line.empty() || on_line(line);
    pending_.clear();
    chunk.remove_prefix(nl + 1);
    if (!go_on) return false;
  }
  return true;
}

std::string url_escape(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

struct ApiClient::Impl {
  bool tls = true;
  std::string host;
  int port = 443;
  std::string prefix;    // path prefix of the server URL
  fs::path private_dir;  // inline PEM data written here (0700 dir, 0600 files)
  std::string ca_file, cert_file, key_file;

  std::mutex token_mutex;
  std::string token;
  fs::file_time_type token_mtime{};

  std::mutex streams_mutex;
  std::multimap<const std::atomic<bool>*, httplib::ClientImpl*> streams;

  // users[].user.exec: the plugin's credential, and its client certificate as files.
  std::unique_ptr<ExecCredentialProvider> exec;
  std::mutex exec_mutex;
  std::string exec_cert_pem;
  std::string exec_cert_file, exec_key_file;
  unsigned exec_generation = 0;

  ~Impl() {
    std::error_code ec;
    if (!private_dir.empty()) fs::remove_all(private_dir, ec);
  }

  std::string write_private(const std::string& name, const std::string& data) {
    if (private_dir.empty()) {
      std::string tmpl = (fs::temp_directory_path() / "podgauge-k8s-XXXXXX").string();
      if (!mkdtemp(tmpl.data()))
        throw ConfigError("cannot create a private directory for TLS material: " +
                          std::string(std::strerror(errno)));
      private_dir = tmpl;
    }
    fs::path p = private_dir / name;
    {
      std::ofstream out(p, std::ios::binary);
      out << data;
      if (!out) throw ConfigError("cannot write " + p.string());
    }
    ::chmod(p.c_str(), 0600);
    return p.string();
  }
};

ApiClient::ApiClient(RestConfig config, ApiClientOptions options)
    : config_(std::move(config)), options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  const std::string& s = config_.server;
  auto scheme_end = s.find("://");
  if (scheme_end == std::string::npos)
    throw ConfigError("server \"" + s + "\" (" + config_.source +
                      ") is not a URL like https://host:6443");
  std::string scheme = s.substr(0, scheme_end);
  if (scheme != "https" && scheme != "http")
    throw ConfigError("server \"" + s + "\" (" + config_.source +
                      "): scheme must be https or http");
  impl_->tls = scheme == "https";
  std::string rest = s.substr(scheme_end + 3);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) impl_->prefix = rest.substr(slash);
  while (!impl_->prefix.empty() && impl_->prefix.back() == '/') impl_->prefix.pop_back();
  impl_->port = impl_->tls ? 443 : 80;
  std::string host = authority;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      impl_->port = std::stoi(authority.substr(close + 2));
  } else if (auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    try {
      impl_->port = std::stoi(authority.substr(colon + 1));
    } catch (const std::exception&) {
      throw ConfigError("server \"" + s + "\" (" + config_.source + ") has an invalid port");
    }
  }
  impl_->host = host;
  if (!config_.ca_pem.empty())
    impl_->ca_file = impl_->write_private("ca.crt", config_.ca_pem);
  else if (!config_.ca_file.empty())
    impl_->ca_file = config_.ca_file.string();
  if (!config_.client_certificate_pem.empty())
    impl_->cert_file = impl_->write_private("client.crt", config_.client_certificate_pem);
  else if (!config_.client_certificate_file.empty())
    impl_->cert_file = config_.client_certificate_file.string();
  if (!config_.client_key_pem.empty())
    impl_->key_file = impl_->write_private("client.key", config_.client_key_pem);
  else if (!config_.client_key_file.empty())
    impl_->key_file = config_.client_key_file.string();
  if (config_.exec) impl_->exec = std::make_unique<ExecCredentialProvider>(*config_.exec);
}

ApiClient::~ApiClient() = default;

namespace {

std::string bearer_token(ApiClient::Impl& impl, const RestConfig& config);

struct ClientIdentity {
  std::string token, cert_file, key_file;
};

// Runs the exec plugin when its credential is missing or expired (throws
// ExecCredentialError with the plugin's own complaint).
ClientIdentity identity(ApiClient::Impl& impl, const RestConfig& config) {
  if (!impl.exec) return {bearer_token(impl, config), impl.cert_file, impl.key_file};
  ExecCredential cred = impl.exec->get();
  std::lock_guard lock(impl.exec_mutex);
  if (!cred.client_certificate_pem.empty() && cred.client_certificate_pem != impl.exec_cert_pem) {
    // New names each time: a connection being set up may still read the previous pair.
    const auto n = std::to_string(++impl.exec_generation);
    impl.exec_cert_file = impl.write_private("exec-" + n + ".crt", cred.client_certificate_pem);
    impl.exec_key_file = impl.write_private("exec-" + n + ".key", cred.client_key_pem);
    impl.exec_cert_pem = cred.client_certificate_pem;
  }
  if (cred.client_certificate_pem.empty()) return {cred.token, impl.cert_file, impl.key_file};
  return {cred.token, impl.exec_cert_file, impl.exec_key_file};
}

}  // namespace

static std::unique_ptr<httplib::ClientImpl> make_http(ApiClient::Impl& impl,
                                                      const RestConfig& config,
                                                      const ApiClientOptions& options,
                                                      std::chrono::milliseconds read_timeout) {
  std::unique_ptr<httplib::ClientImpl> c;
  const ClientIdentity id = identity(impl, config);
  std::string connect_host = config.tls_server_name.empty() ? impl.host : config.tls_server_name;
  if (impl.tls) {
    std::unique_ptr<httplib::SSLClient> ssl;
    if (!id.cert_file.empty())
      ssl = std::make_unique<httplib::SSLClient>(connect_host, impl.port, id.cert_file,
                                                 id.key_file);
    else
      ssl = std::make_unique<httplib::SSLClient>(connect_host, impl.port);
    if (config.insecure_skip_tls_verify) {
      ssl->enable_server_certificate_verification(false);
    } else {
      ssl->enable_server_certificate_verification(true);
      if (!impl.ca_file.empty()) ssl->set_ca_cert_path(impl.ca_file.c_str());
    }
    c = std::move(ssl);
  } else {
    c = std::make_unique<httplib::ClientImpl>(impl.host, impl.port);
  }
  // tls-server-name: verify (and send SNI for) that name while connecting to the URL's host.
  if (!config.tls_server_name.empty())
    c->set_hostname_addr_map({{config.tls_server_name, impl.host}});
  c->set_connection_timeout(
      std::chrono::duration_cast<std::chrono::microseconds>(options.connect_timeout).count() /
          1000000,
      std::chrono::duration_cast<std::chrono::microseconds>(options.connect_timeout).count() %
          1000000);
  auto rt = std::chrono::duration_cast<std::chrono::microseconds>(read_timeout).count();
  c->set_read_timeout(rt / 1000000, rt % 1000000);
  c->set_write_timeout(30, 0);
  c->set_keep_alive(false);
  if (!id.token.empty()) c->set_bearer_token_auth(id.token.c_str());
  return c;
}

namespace {

std::string bearer_token(ApiClient::Impl& impl, const RestConfig& config) {
  if (!config.token.empty()) return config.token;
  if (config.token_file.empty()) return {};
  std::lock_guard lock(impl.token_mutex);
  std::error_code ec;
  auto mtime = fs::last_write_time(config.token_file, ec);
  if (impl.token.empty() || (!ec && mtime != impl.token_mtime)) {
    std::ifstream in(config.token_file);
    std::string t((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    if (!t.empty() || impl.token.empty()) {
      impl.token = t;
      impl.token_mtime = mtime;
    }
  }
  return impl.token;
}

std::string who(const RestConfig& c) {
  return c.context.empty() ? c.source : "context \"" + c.context + "\" of " + c.source;
}

}  // namespace

static ApiError http_error(const RestConfig& config, const std::string& method,
                           const std::string& url, int code, const std::string& body) {
  Status st;
  try {
    auto j = nlohmann::json::parse(body);
    if (j.is_object() && j.value("kind", "") == "Status") st = Status::from_json(j);
  } catch (const std::exception&) {
  }
  std::string detail = !st.message.empty() ? st.message : body.substr(0, 200);
  std::string head = method + " " + url + ": " + std::to_string(code) + " ";
  ApiErrorKind kind;
  std::string msg;
  switch (code) {
    case 401:
      kind = ApiErrorKind::Unauthorized;
      msg = head + "Unauthorized: the API server rejected the credentials of " + who(config) +
            " — check that the token or client certificate is valid, not expired, and issued for "
            "this cluster";
      break;
    case 403:
      kind = ApiErrorKind::Forbidden;
      msg = head + "Forbidden: " + detail +
            " — grant this user RBAC permission for that verb and resource "
            "(ClusterRole/Role + binding)";
      break;
    case 404:
      kind = ApiErrorKind::NotFound;
      msg = head + "Not Found: " + detail +
            " — check the namespace, name and that the API server serves this resource";
      break;
    case 410:
      kind = ApiErrorKind::Gone;
      msg = head + "Gone: " + detail + " — the resource version is too old; re-list";
      break;
    default:
      kind = (code >= 500 || code == 429) ? ApiErrorKind::ServerError : ApiErrorKind::Other;
      msg = head + (kind == ApiErrorKind::ServerError ? "server error: " : "error: ") + detail;
  }
  return ApiError(kind, code, st, msg);
}

static ApiError transport_error(const std::string& method, const std::string& url,
                                httplib::Error err, const std::string& os_reason,
                                long verify_result = 0) {
  if (err == httplib::Error::Read || err == httplib::Error::Canceled) {
    return ApiError(ApiErrorKind::Unreachable, 0, {},
                    method + " " + url +
                        ": the connection to the API server broke while reading the response (" +
                        httplib::to_string(err) + ")");
  }
  std::string msg =
      method + " " + url + ": cannot reach the API server: " + httplib::to_string(err);
  if (!os_reason.empty()) msg += " (" + os_reason + ")";
  if (verify_result != 0 && verify_result != X509_V_OK)
    msg += std::string(" [") + X509_verify_cert_error_string(verify_result) + "]";
  if (err == httplib::Error::SSLServerVerification)
    msg +=
        " — the server certificate does not verify against the kubeconfig's certificate-authority";
  else
    msg += " — check the server URL, that the API server is running, and network access";
  return ApiError(ApiErrorKind::Unreachable, 0, {}, msg);
}

// httplib connects non-blocking and keeps no errno; one blocking connect recovers the OS's
// reason (refused, unreachable, unknown host) for the message.
static std::string connect_reason(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
  std::string reason = "connection timed out";
  for (auto* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    int e = errno;
    ::close(fd);
    if (rc == 0) {
      reason.clear();
      break;
    }
    reason = e == EINPROGRESS || e == EAGAIN ? "connection timed out" : std::strerror(e);
  }
  freeaddrinfo(res);
  return reason;
}

namespace {

long verify_result(httplib::ClientImpl& c) {
  if (auto* ssl = dynamic_cast<httplib::SSLClient*>(&c)) return ssl->get_openssl_verify_result();
  return 0;
}

std::string request(ApiClient::Impl& impl, const RestConfig& config,
                    const ApiClientOptions& options, const std::string& method,
                    const std::string& path, const std::string* body,
                    const std::string& content_type) {
  auto c = make_http(impl, config, options, options.read_timeout);
  std::string full = impl.prefix + path;
  std::string url = config.server + path;
  httplib::Headers headers{{"Accept", "application/json"}, {"User-Agent", options.user_agent}};
  httplib::Result res = method == "GET" ? c->Get(full.c_str(), headers)
                        : method == "POST"
                            ? c->Post(full.c_str(), headers, *body, content_type.c_str())
                            : c->Patch(full.c_str(), headers, *body, content_type.c_str());
  if (!res)
    throw transport_error(
        method, url, res.error(),
        res.error() == httplib::Error::Connection ? connect_reason(impl.host, impl.port) : "",
        verify_result(*c));
  if (res->status < 200 || res->status >= 300)
    throw http_error(config, method, url, res->status, res->body);
  return res->body;
}

// An exec credential the server rejects is fetched again once, as client-go does on a 401.
std::string request_with_reauth(ApiClient::Impl& impl, const RestConfig& config,
                                const ApiClientOptions& options, const std::string& method,
                                const std::string& path, const std::string* body,
                                const std::string& content_type) {
  try {
    return request(impl, config, options, method, path, body, content_type);
  } catch (const ApiError& e) {
    if (!impl.exec || e.kind() != ApiErrorKind::Unauthorized) throw;
    impl.exec->invalidate();
  }
  return request(impl, config, options, method, path, body, content_type);
}

}  // namespace

std::string ApiClient::get(const std::string& path) {
  return request_with_reauth(*impl_, config_, options_, "GET", path, nullptr, "");
}
std::string ApiClient::post(const std::string& path, const std::string& body,
                            const std::string& content_type) {
  return request_with_reauth(*impl_, config_, options_, "POST", path, &body, content_type);
}
std::string ApiClient::patch(const std::string& path, const std::string& body,
                             const std::string& content_type) {
  return request_with_reauth(*impl_, config_, options_, "PATCH", path, &body, content_type);
}

void ApiClient::stream(const std::string& path,
                       const std::function<bool(std::string_view)>& on_line,
                       const std::atomic<bool>* stop, std::chrono::milliseconds read_timeout) {
  auto c = make_http(*impl_, config_, options_, read_timeout);
  {
    std::lock_guard lock(impl_->streams_mutex);
    impl_->streams.emplace(stop, c.get());
  }
  struct Unregister {
    Impl& impl;
    httplib::ClientImpl* c;
    ~Unregister() {
      std::lock_guard lock(impl.streams_mutex);
      for (auto it = impl.streams.begin(); it != impl.streams.end(); ++it)
        if (it->second == c) {
          impl.streams.erase(it);
          break;
        }
    }
  } unregister{*impl_, c.get()};
  auto stopped = [&] { return stop && stop->load(); };
  if (stopped()) return;

  std::string full = impl_->prefix + path;
  std::string url = config_.server + path;
  int status = 0;
  std::string error_body;
  LineSplitter splitter;
  bool consumer_stopped = false;
  httplib::Headers headers{{"Accept", "application/json"}, {"User-Agent", options_.user_agent}};
  auto res = c->Get(
      full.c_str(), headers,
      [&](const httplib::Response& r) {
        status = r.status;
        return true;
      },
      [&](const char* data, size_t len) {
        if (stopped()) return false;
        if (status < 200 || status >= 300) {
          if (error_body.size() < 65536) error_body.append(data, len);
          return true;
        }
        if (!splitter.feed(std::string_view(data, len), on_line)) {
          consumer_stopped = true;
          return false;
        }
        return !stopped();
      });
  if (consumer_stopped || stopped()) return;
  if (status != 0 && (status < 200 || status >= 300)) {
    if (res && error_body.empty()) error_body = res->body;
    // The caller reconnects; with a fresh exec credential then.
    if (status == 401 && impl_->exec) impl_->exec->invalidate();
    throw http_error(config_, "GET", url, status, error_body);
  }
  if (!res)
    throw transport_error(
        "GET", url, res.error(),
        res.error() == httplib::Error::Connection ? connect_reason(impl_->host, impl_->port) : "",
        verify_result(*c));
  // A chunked stream cut without its final chunk still counts as ended by the server here;
  // the caller resumes from its last resource version either way.
}

void ApiClient::cancel_streams(const std::atomic<bool>* stop) {
  std::lock_guard lock(impl_->streams_mutex);
  for (auto& [flag, c] : impl_->streams)
    if (!stop || flag == stop) c->stop();
}

}  // namespace podgauge::k8s
