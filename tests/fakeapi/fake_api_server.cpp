#include "fake_api_server.h"

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "table_printer.h"
#include "watch_stream.h"

namespace podgauge::fakeapi {

using nlohmann::json;
using namespace std::chrono_literals;

struct FakeApiServer::Listener {
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
};

struct FakeApiServer::Route {
  const ResourceType* type = nullptr;
  std::string ns;
  std::string name;
  std::string subresource;
  bool watch = false;
  std::string verb;
};

namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    auto pos = s.find(sep, start);
    if (pos == std::string_view::npos) pos = s.size();
    out.emplace_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(s.begin());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// The media ranges of an Accept header, each as {type, {param: value}}, in order.
std::vector<std::pair<std::string, std::map<std::string, std::string>>> media_ranges(
    const std::string& accept) {
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> out;
  for (const auto& range : split(accept, ',')) {
    auto parts = split(range, ';');
    std::map<std::string, std::string> params;
    for (size_t i = 1; i < parts.size(); ++i) {
      auto eq = parts[i].find('=');
      if (eq != std::string::npos) params[trim(parts[i].substr(0, eq))] = trim(parts[i].substr(eq + 1));
    }
    out.emplace_back(trim(parts[0]), std::move(params));
  }
  return out;
}

// The first acceptable answer among those Accept lists: "as" (Table, APIGroupDiscoveryList)
// or "" for plain JSON.
std::string negotiate(const std::string& accept, const std::string& as, const std::string& group,
                      const std::vector<std::string>& versions) {
  if (accept.empty()) return "";
  for (const auto& [type, params] : media_ranges(accept)) {
    if (type != "application/json" && type != "*/*" && type != "application/*") continue;
    auto a = params.find("as");
    if (a == params.end()) return "";
    if (a->second == as && params.count("g") && params.at("g") == group && params.count("v") &&
        std::find(versions.begin(), versions.end(), params.at("v")) != versions.end())
      return as;
  }
  return "";
}

void send_json(httplib::Response& res, int code, const json& body,
               const std::string& content_type = "application/json") {
  res.status = code;
  res.set_content(body.dump(), content_type.c_str());
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.code(), e.status()); }

std::string param(const httplib::Request& req, const char* key) {
  return req.has_param(key) ? req.get_param_value(key) : "";
}

bool truthy(const std::string& v) { return v == "true" || v == "1"; }

std::optional<std::uint64_t> parse_rv(const std::string& s) {
  if (s.empty() || s == "0") return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (*end != '\0' || errno != 0)
    throw ApiError::bad_request("invalid resource version: " + s);
  return v;
}

json parse_body(const httplib::Request& req) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded())
    throw ApiError::bad_request("the body of the request was in an unknown format - accepted "
                                "media types include: application/json");
  return body;
}

json strip_type_meta(json object) {
  object.erase("kind");
  object.erase("apiVersion");
  return object;
}

X509* read_cert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return cert;
}

}  // namespace

FakeApiServer::FakeApiServer() : FakeApiServer(Options{}) {}

FakeApiServer::FakeApiServer(Options options)
    : options_(std::move(options)), catalog_(options_.serve_events_k8s_io) {
  store_ = std::make_unique<ObjectStore>(
      catalog_, ObjectStore::Options{options_.history_window, options_.auto_create_namespaces});
  for (const auto& [token, user] : options_.tokens) access_.add_token(token, user);
  ca_ = std::make_unique<CertificateAuthority>();
  server_cert_ = ca_->issue_server();
  if (options_.dir.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "podgauge-fakeapi-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("fakeapi: cannot create a temp dir");
    dir_ = tmpl;
    owns_dir_ = true;
  } else {
    dir_ = options_.dir;
    std::filesystem::create_directories(dir_);
  }
  write_file(dir_ / "ca.crt", ca_->ca_pem(), 0644);
  write_file(dir_ / "server.crt", server_cert_.cert_pem, 0644);
  write_file(dir_ / "server.key", server_cert_.key_pem);
  if (options_.seed_namespaces)
    for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"})
      store_->create(catalog_.resolve("namespaces"), "", {{"metadata", {{"name", ns}}}});
  port_ = options_.port;
  http_port_ = options_.http_port;
  if (options_.start) start();
}

FakeApiServer::~FakeApiServer() {
  {
    std::lock_guard lock(restart_mutex_);
    if (restart_thread_.joinable()) restart_thread_.join();
  }
  stop();
  if (owns_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::unique_ptr<FakeApiServer::Listener> FakeApiServer::make_listener(bool tls) {
  auto l = std::make_unique<Listener>();
  if (tls) {
    l->server = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
      SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
      X509* cert = read_cert(server_cert_.cert_pem);
      BIO* kb = BIO_new_mem_buf(server_cert_.key_pem.data(), static_cast<int>(server_cert_.key_pem.size()));
      EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
      BIO_free(kb);
      X509* ca = read_cert(ca_->ca_pem());
      bool ok = cert && key && ca && SSL_CTX_use_certificate(&ctx, cert) == 1 &&
                SSL_CTX_use_PrivateKey(&ctx, key) == 1 &&
                X509_STORE_add_cert(SSL_CTX_get_cert_store(&ctx), ca) == 1 &&
                SSL_CTX_add_client_CA(&ctx, ca) == 1;
      // Ask for a client certificate, verify one if sent, accept none (tokens): as upstream.
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
      static const unsigned char sid[] = "podgauge-fakeapi";
      SSL_CTX_set_session_id_context(&ctx, sid, sizeof sid - 1);
      X509_free(cert);
      EVP_PKEY_free(key);
      X509_free(ca);
      return ok;
    });
  } else {
    l->server = std::make_unique<httplib::Server>();
  }
  auto& s = *l->server;
  const std::size_t threads = options_.worker_threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_keep_alive_max_count(10000);
  s.set_keep_alive_timeout(5);
  s.set_read_timeout(30);
  s.set_write_timeout(10);
  httplib::Server::Handler h = [this, tls](const httplib::Request& req, httplib::Response& res) {
    handle(req, res, tls);
  };
  s.Get(".*", h);
  s.Post(".*", h);
  s.Put(".*", h);
  s.Patch(".*", h);
  s.Delete(".*", h);
  return l;
}

void FakeApiServer::start() {
  if (running()) return;
  stopping_ = false;
  auto launch = [&](bool tls, std::uint16_t& port) {
    auto l = make_listener(tls);
    if (!l->server->is_valid()) throw std::runtime_error("fakeapi: TLS setup failed");
    if (port == 0) {
      int p = l->server->bind_to_any_port(options_.host);
      if (p <= 0) throw std::runtime_error("fakeapi: cannot bind " + options_.host);
      port = static_cast<std::uint16_t>(p);
    } else {
      bool bound = false;
      // A restart may race the old socket's close; retry briefly.
      for (int i = 0; i < 50 && !bound; ++i) {
        bound = l->server->bind_to_port(options_.host, port);
        if (!bound) std::this_thread::sleep_for(20ms);
      }
      if (!bound)
        throw std::runtime_error("fakeapi: cannot bind " + options_.host + ":" + std::to_string(port));
    }
    auto* server = l->server.get();
    l->thread = std::thread([server] { server->listen_after_bind(); });
    for (int i = 0; i < 200 && !server->is_running(); ++i) std::this_thread::sleep_for(5ms);
    return l;
  };
  https_ = launch(true, port_);
  if (options_.plain_http) http_ = launch(false, http_port_);
  if (!std::filesystem::exists(token_kubeconfig())) {
    write_token_kubeconfig(options_.tokens.empty() ? "" : options_.tokens.begin()->first,
                           token_kubeconfig());
    write_cert_kubeconfig("admin", {"system:masters"}, cert_kubeconfig());
  }
}

void FakeApiServer::stop() {
  stopping_ = true;
  store_->wake_all();
  for (auto* l : {&https_, &http_}) {
    if (!*l) continue;
    (*l)->server->stop();
    if ((*l)->thread.joinable()) (*l)->thread.join();
    l->reset();
  }
}

void FakeApiServer::restart(std::chrono::milliseconds downtime) {
  stop();
  std::this_thread::sleep_for(downtime);
  start();
}

bool FakeApiServer::running() const { return https_ && https_->server->is_running(); }

std::string FakeApiServer::url() const {
  return "https://" + options_.host + ":" + std::to_string(port_);
}

std::string FakeApiServer::http_url() const {
  return "http://" + options_.host + ":" + std::to_string(http_port_);
}

std::string FakeApiServer::kubeconfig(const std::string& user_block) const {
  std::ostringstream y;
  y << "apiVersion: v1\nkind: Config\nclusters:\n- name: fakeapi\n  cluster:\n"
    << "    server: " << url() << "\n"
    << "    certificate-authority-data: " << base64_encode(ca_->ca_pem()) << "\n"
    << "users:\n- name: fakeapi-user\n  user:\n" << user_block
    << "contexts:\n- name: fakeapi\n  context:\n    cluster: fakeapi\n    user: fakeapi-user\n"
    << "    namespace: default\ncurrent-context: fakeapi\npreferences: {}\n";
  return y.str();
}

std::filesystem::path FakeApiServer::write_token_kubeconfig(const std::string& token,
                                                            const std::filesystem::path& path) const {
  write_file(path, kubeconfig("    token: " + token + "\n"));
  return path;
}

KeyPair FakeApiServer::mint_client_certificate(const std::string& user,
                                               const std::vector<std::string>& groups) const {
  return ca_->issue_client(user, groups);
}

std::filesystem::path FakeApiServer::write_cert_kubeconfig(const std::string& user,
                                                           const std::vector<std::string>& groups,
                                                           const std::filesystem::path& path) const {
  auto kp = mint_client_certificate(user, groups);
  write_file(path, kubeconfig("    client-certificate-data: " + base64_encode(kp.cert_pem) +
                              "\n    client-key-data: " + base64_encode(kp.key_pem) + "\n"));
  return path;
}

void FakeApiServer::add_token(const std::string& token, User user) {
  access_.add_token(token, std::move(user));
}

void FakeApiServer::remove_token(const std::string& token) { access_.remove_token(token); }

void FakeApiServer::allow(const std::string& user, PolicyRule rule) {
  access_.allow(user, std::move(rule));
}

json FakeApiServer::create(const std::string& resource, const std::string& ns, json object) {
  return store_->create(catalog_.resolve(resource), ns, std::move(object));
}

json FakeApiServer::get(const std::string& resource, const std::string& ns,
                        const std::string& name) const {
  return store_->get(catalog_.resolve(resource), ns, name);
}

json FakeApiServer::update(const std::string& resource, const std::string& ns, json object) {
  const std::string name = object.value("/metadata/name"_json_pointer, std::string());
  return store_->update(catalog_.resolve(resource), ns, name, std::move(object));
}

json FakeApiServer::patch(const std::string& resource, const std::string& ns,
                          const std::string& name, const json& merge_patch) {
  return store_->patch(catalog_.resolve(resource), ns, name, merge_patch, PatchType::Merge);
}

json FakeApiServer::remove(const std::string& resource, const std::string& ns,
                           const std::string& name) {
  return store_->remove(catalog_.resolve(resource), ns, name);
}

std::vector<json> FakeApiServer::list(const std::string& resource, const std::string& ns) const {
  ListOptions o;
  o.namespace_ = ns;
  return store_->list(catalog_.resolve(resource), o).items;
}

// ---------------------------------------------------------------------------------------
// Request handling

void FakeApiServer::handle(const httplib::Request& req, httplib::Response& res, bool tls) {
  ++requests_;
  if (std::getenv("PODGAUGE_FAKEAPI_TRACE"))
    std::cerr << "fakeapi: " << req.method << " " << req.target << " Accept: "
              << req.get_header_value("Accept") << "\n";
  try {
    if (req.path.rfind("/fakeapi/", 0) == 0) return handle_control(req, res);
    handle_api(req, res, tls);
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const std::exception& e) {
    send_error(res, ApiError::internal(e.what()));
  }
}

User FakeApiServer::authenticate(const httplib::Request& req, bool tls) const {
  if (tls && req.ssl) {
    // Only verified chains reach here: SSL_VERIFY_PEER fails the handshake otherwise.
    X509* cert = SSL_get1_peer_certificate(req.ssl);
    if (cert) {
      User user;
      X509_NAME* subject = X509_get_subject_name(cert);
      for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
        X509_NAME_ENTRY* e = X509_NAME_get_entry(subject, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        unsigned char* utf8 = nullptr;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        if (n < 0) continue;
        std::string value(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
        OPENSSL_free(utf8);
        if (nid == NID_commonName) user.name = value;
        if (nid == NID_organizationName) user.groups.push_back(value);
      }
      X509_free(cert);
      if (!user.name.empty() && SSL_get_verify_result(req.ssl) == X509_V_OK) return user;
    }
  }
  const std::string auth = req.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  if (auth.size() > bearer.size() && auth.compare(0, bearer.size(), bearer) == 0)
    if (auto user = access_.authenticate_token(trim(auth.substr(bearer.size())))) return *user;
  throw ApiError::unauthorized();
}

void FakeApiServer::handle_api(const httplib::Request& req, httplib::Response& res, bool tls) {
  int injected = 0;
  if (faults_.take_failed_request(injected))
    throw ApiError(injected, injected == 500 ? "InternalError" : "ServiceUnavailable",
                   "fakeapi: injected failure");
  const User user = authenticate(req, tls);
  if (handle_non_resource(req, res)) return;

  // /api/v1/... or /apis/<group>/<version>/...
  auto segs = split(req.path, '/');
  segs.erase(segs.begin());  // leading ""
  if (!segs.empty() && segs.back().empty()) segs.pop_back();
  std::string group, version;
  size_t at;
  if (segs.size() >= 2 && segs[0] == "api") {
    version = segs[1];
    at = 2;
  } else if (segs.size() >= 3 && segs[0] == "apis") {
    group = segs[1];
    version = segs[2];
    at = 3;
  } else {
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  std::vector<std::string> rest(segs.begin() + static_cast<long>(at), segs.end());
  Route route;
  if (!rest.empty() && rest[0] == "watch") {
    route.watch = true;
    rest.erase(rest.begin());
  }
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    if (const auto* t = catalog_.find(group, version, rest[2]); t && t->namespaced) {
      route.type = t;
      route.ns = rest[1];
      rest.erase(rest.begin(), rest.begin() + 2);
    }
  }
  if (!route.type && !rest.empty()) route.type = catalog_.find(group, version, rest[0]);
  if (route.type && route.type->plural == "pods" && !route.ns.empty() && !route.watch &&
      rest.size() >= 3 && rest[2] == "proxy")
    return proxy_to_pod(req, res, user, route.ns, rest);
  if (!route.type || rest.size() > 3 || (route.type->namespaced && route.ns.empty() && rest.size() > 1))
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  if (rest.size() >= 2) route.name = rest[1];
  if (rest.size() == 3) route.subresource = rest[2];
  if (!route.subresource.empty() && route.subresource != "status")
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  if (truthy(param(req, "watch"))) route.watch = true;

  const std::string& m = req.method;
  if (m == "GET") route.verb = route.watch ? "watch" : route.name.empty() ? "list" : "get";
  else if (m == "POST") route.verb = "create";
  else if (m == "PUT") route.verb = "update";
  else if (m == "PATCH") route.verb = "patch";
  else if (m == "DELETE") route.verb = route.name.empty() ? "deletecollection" : "delete";
  if ((route.verb == "create" && !route.name.empty()) ||
      ((route.verb == "update" || route.verb == "patch") && route.name.empty()))
    throw ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");

  ResourceAttributes attrs{route.verb, group, route.type->plural, route.subresource, route.ns,
                           route.name};
  if (auto denied = access_.authorize(user, attrs)) {
    json details = {{"kind", route.type->plural}};
    if (!route.name.empty()) details["name"] = route.name;
    if (!group.empty()) details["group"] = group;
    throw ApiError(403, "Forbidden", *denied, details);
  }
  handle_resource(req, res, user, route);
}

// The API server's pod proxy (pods/<name>[:<port>]/proxy/<path>), as `kubectl get --raw` and
// podgauge's CLI use it to reach agents: RBAC on the pods/proxy subresource, then an HTTP
// request to status.podIP (registry/core/pod/rest.ResourceLocation).
void FakeApiServer::proxy_to_pod(const httplib::Request& req, httplib::Response& res,
                                 const User& user, const std::string& ns,
                                 const std::vector<std::string>& rest) {
  std::string name = rest[1], port = "80";
  if (auto c = name.rfind(':'); c != std::string::npos) {
    port = name.substr(c + 1);
    name.resize(c);
  }
  std::string verb;
  if (req.method == "GET") verb = "get";
  else if (req.method == "POST") verb = "create";
  else if (req.method == "PUT") verb = "update";
  else if (req.method == "PATCH") verb = "patch";
  else if (req.method == "DELETE") verb = "delete";
  ResourceAttributes attrs{verb, "", "pods", "proxy", ns, rest[1]};
  if (auto denied = access_.authorize(user, attrs))
    throw ApiError(403, "Forbidden", *denied, {{"kind", "pods"}, {"name", rest[1]}});
  if (verb != "get")
    throw ApiError(405, "MethodNotAllowed", "fakeapi: the pod proxy forwards GET only");
  const json pod = store_->get(catalog_.resolve("pods"), ns, name);
  const std::string ip = pod.value("/status/podIP"_json_pointer, std::string());
  if (ip.empty())
    throw ApiError(503, "ServiceUnavailable", "address not allowed: pod " + name + " has no IP");
  std::string target = "/";
  for (size_t i = 3; i < rest.size(); ++i) target += (i > 3 ? "/" : "") + rest[i];
  if (rest.size() > 3 && !req.path.empty() && req.path.back() == '/') target += "/";
  if (auto q = req.target.find('?'); q != std::string::npos) target += req.target.substr(q);
  httplib::Client upstream(ip, std::atoi(port.c_str()));
  upstream.set_connection_timeout(5, 0);
  upstream.set_read_timeout(30, 0);
  auto r = upstream.Get(target);
  if (!r)
    throw ApiError(503, "ServiceUnavailable",
                   "error trying to reach service: dial tcp " + ip + ":" + port + ": " +
                       httplib::to_string(r.error()));
  res.status = r->status;
  res.set_content(r->body, r->get_header_value("Content-Type").empty()
                               ? "text/plain"
                               : r->get_header_value("Content-Type").c_str());
}

bool FakeApiServer::handle_non_resource(const httplib::Request& req, httplib::Response& res) {
  const std::string& p = req.path;
  const std::string accept = req.get_header_value("Accept");
  if (req.method != "GET") return false;
  if (p == "/version") {
    send_json(res, 200,
              {{"major", "1"}, {"minor", "32"}, {"gitVersion", options_.version},
               {"gitCommit", "0000000000000000000000000000000000000000"},
               {"gitTreeState", "clean"}, {"buildDate", "2024-12-11T00:00:00Z"},
               {"goVersion", "go1.23.3"}, {"compiler", "gc"}, {"platform", "linux/amd64"}});
    return true;
  }
  if (p == "/healthz" || p == "/livez" || p == "/readyz") {
    res.set_content("ok", "text/plain");
    return true;
  }
  if (p == "/api" || p == "/apis" || p == "/api/" || p == "/apis/") {
    const bool core = p.rfind("/api", 0) == 0 && p.rfind("/apis", 0) != 0;
    if (negotiate(accept, "APIGroupDiscoveryList", "apidiscovery.k8s.io", {"v2"}) ==
        "APIGroupDiscoveryList") {
      send_json(res, 200, catalog_.aggregated_discovery(core),
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    } else {
      send_json(res, 200, core ? catalog_.api_versions(options_.host + ":" + std::to_string(port_))
                               : catalog_.api_group_list());
    }
    return true;
  }
  auto segs = split(p, '/');
  if ((segs.size() == 3 && segs[1] == "api") || (segs.size() == 4 && segs[1] == "apis")) {
    auto list = segs.size() == 3 ? catalog_.api_resource_list("", segs[2])
                                 : catalog_.api_resource_list(segs[2], segs[3]);
    if (!list) throw ApiError(404, "NotFound", "the server could not find the requested resource");
    send_json(res, 200, *list);
    return true;
  }
  if (p == "/openapi/v3") {
    send_json(res, 200, catalog_.openapi_v3_index());
    return true;
  }
  if (p.rfind("/openapi/v3/", 0) == 0) {
    auto gv = split(p.substr(std::string("/openapi/v3/").size()), '/');
    std::optional<json> doc;
    if (gv.size() == 2 && gv[0] == "api") doc = catalog_.openapi_v3_document("", gv[1]);
    if (gv.size() == 3 && gv[0] == "apis") doc = catalog_.openapi_v3_document(gv[1], gv[2]);
    if (!doc) throw ApiError(404, "NotFound", "the server could not find the requested resource");
    res.set_header("Cache-Control", "public, immutable");
    send_json(res, 200, *doc);
    return true;
  }
  if (p == "/openapi/v2")
    throw ApiError(404, "NotFound", "the server could not find the requested resource");
  return false;
}

void FakeApiServer::handle_resource(const httplib::Request& req, httplib::Response& res,
                                    const User&, const Route& r) {
  const ResourceType& type = *r.type;
  const std::string accept = req.get_header_value("Accept");
  const bool as_table = negotiate(accept, "Table", "meta.k8s.io", {"v1", "v1beta1"}) == "Table";
  IncludeObject include = IncludeObject::Metadata;
  if (param(req, "includeObject") == "Object") include = IncludeObject::Object;
  if (param(req, "includeObject") == "None") include = IncludeObject::None;
  const char* table_type = "application/json;as=Table;v=v1;g=meta.k8s.io";

  if (r.verb == "watch") return serve_watch(req, res, r);

  if (r.verb == "list" || r.verb == "deletecollection") {
    ListOptions o;
    o.namespace_ = r.ns;
    o.labels = LabelSelector::parse(param(req, "labelSelector"));
    o.fields = FieldSelector::parse(param(req, "fieldSelector"), type.kind);
    if (!r.name.empty()) o.fields = FieldSelector::parse("metadata.name=" + r.name, type.kind);
    if (req.has_param("limit")) o.limit = std::atoll(param(req, "limit").c_str());
    o.continue_token = param(req, "continue");
    const auto rv = parse_rv(param(req, "resourceVersion"));
    const std::string match = param(req, "resourceVersionMatch");
    if (rv && r.verb == "list") {
      const auto current = store_->resource_version();
      if (match == "Exact" && (*rv < store_->compacted_resource_version() || *rv < current))
        throw ApiError::expired("too old resource version: " + std::to_string(*rv) + " (" +
                                std::to_string(current) + ")");
      if (*rv > current) {
        store_->wait_for_change(*rv - 1, std::chrono::steady_clock::now() + 1s);
        if (store_->resource_version() < *rv)
          throw ApiError(504, "Timeout",
                         "Too large resource version: " + std::to_string(*rv) +
                             ", current: " + std::to_string(current),
                         {{"causes", {{{"reason", "ResourceVersionTooLarge"},
                                       {"message", "Too large resource version"}}}},
                          {"retryAfterSeconds", 1}});
      }
    }
    auto result = store_->list(type, o);
    if (r.verb == "deletecollection") {
      json items = json::array();
      for (const auto& obj : result.items)
        items.push_back(store_->remove(type, obj["metadata"].value("namespace", ""),
                                       obj["metadata"]["name"]));
      send_json(res, 200, {{"kind", type.kind + "List"}, {"apiVersion", type.group_version()},
                           {"metadata", {{"resourceVersion", std::to_string(store_->resource_version())}}},
                           {"items", items}});
      return;
    }
    json meta = {{"resourceVersion", std::to_string(result.resource_version)}};
    if (!result.continue_token.empty()) meta["continue"] = result.continue_token;
    if (result.remaining_item_count) meta["remainingItemCount"] = *result.remaining_item_count;
    if (as_table) {
      send_json(res, 200, TablePrinter::table(type, result.items, include, meta), table_type);
      return;
    }
    json items = json::array();
    for (auto& obj : result.items) items.push_back(strip_type_meta(std::move(obj)));
    send_json(res, 200, {{"kind", type.kind + "List"}, {"apiVersion", type.group_version()},
                         {"metadata", meta}, {"items", items}});
    return;
  }

  const bool status_only = r.subresource == "status";
  if (r.verb == "get") {
    json obj = store_->get(type, r.ns, r.name);
    if (as_table)
      send_json(res, 200,
                TablePrinter::table(type, {obj}, include,
                                    {{"resourceVersion", obj["metadata"].value("resourceVersion", "")}}),
                table_type);
    else
      send_json(res, 200, obj);
    return;
  }
  if (r.verb == "create") {
    json body = parse_body(req);
    if (body.is_object() && body.contains("kind") && body["kind"] != type.kind)
      throw ApiError::bad_request("the API version in the data (" +
                                  body.value("apiVersion", std::string()) +
                                  ") does not match the expected API version (" +
                                  type.group_version() + ") or kind " + body["kind"].dump() +
                                  " does not match " + type.kind);
    send_json(res, 201, store_->create(type, r.ns, std::move(body)));
    return;
  }
  if (r.verb == "update") {
    send_json(res, 200, store_->update(type, r.ns, r.name, parse_body(req), status_only));
    return;
  }
  if (r.verb == "patch") {
    const std::string ct = req.get_header_value("Content-Type");
    PatchType pt;
    if (ct.rfind("application/json-patch+json", 0) == 0) pt = PatchType::Json;
    else if (ct.rfind("application/merge-patch+json", 0) == 0) pt = PatchType::Merge;
    else if (ct.rfind("application/strategic-merge-patch+json", 0) == 0) pt = PatchType::StrategicMerge;
    else
      throw ApiError(415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/strategic-merge-patch+json");
    send_json(res, 200, store_->patch(type, r.ns, r.name, parse_body(req), pt, status_only));
    return;
  }
  if (r.verb == "delete") {
    send_json(res, 200, store_->remove(type, r.ns, r.name));
    return;
  }
  throw ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
}

void FakeApiServer::serve_watch(const httplib::Request& req, httplib::Response& res,
                                const Route& r) {
  WatchRequest w;
  w.type = r.type;
  w.namespace_ = r.ns;
  w.labels = LabelSelector::parse(param(req, "labelSelector"));
  w.fields = FieldSelector::parse(param(req, "fieldSelector"), r.type->kind);
  if (!r.name.empty()) w.fields = FieldSelector::parse("metadata.name=" + r.name, r.type->kind);
  w.resource_version = parse_rv(param(req, "resourceVersion"));
  w.send_initial_events = truthy(param(req, "sendInitialEvents"));
  w.bookmarks = truthy(param(req, "allowWatchBookmarks"));
  long timeout = 1800;  // upstream: a random 30-60 min when not given
  if (req.has_param("timeoutSeconds")) timeout = std::atol(param(req, "timeoutSeconds").c_str());
  w.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(std::max(0L, timeout));
  w.as_table = negotiate(req.get_header_value("Accept"), "Table", "meta.k8s.io", {"v1", "v1beta1"}) == "Table";
  if (param(req, "includeObject") == "Object") w.include_object = IncludeObject::Object;
  if (param(req, "includeObject") == "None") w.include_object = IncludeObject::None;

  struct Context {
    std::unique_ptr<WatchStream> stream;
    std::uint64_t generation;
    bool truncate;
    bool malform;
  };
  auto ctx = std::make_shared<Context>();
  ctx->stream = std::make_unique<WatchStream>(*store_, std::move(w), options_.bookmark_interval);
  ctx->generation = faults_.watch_generation();
  ctx->truncate = faults_.take_truncate_watch();
  ctx->malform = faults_.take_malform_watch();
  if (faults_.take_expire_watch()) {
    const auto rv = store_->resource_version();
    ctx->stream->fail(ApiError::expired("too old resource version: " + param(req, "resourceVersion") +
                                        " (" + std::to_string(rv) + ")")
                          .status());
  }
  res.status = 200;
  res.set_header("Cache-Control", "no-cache, private");
  // The parameter keeps httplib from gzipping the stream (it buffers until the end, which
  // would hold every event back); clients parse media types, so it is still JSON to them.
  res.set_chunked_content_provider(
      "application/json; charset=utf-8", [this, ctx](size_t, httplib::DataSink& sink) {
        if (stopping_ || faults_.watch_generation() != ctx->generation) return false;
        if (ctx->malform) {
          ctx->malform = false;
          const std::string bad =
              json{{"type", "ADDED"},
                   {"object", {{"kind", ctx->stream ? "Pod" : ""}, {"apiVersion", "v1"},
                               {"metadata", "malformed-by-fakeapi"}}}}.dump() + "\n";
          if (!sink.write(bad.data(), bad.size())) return false;
        }
        std::string out;
        const auto step = ctx->stream->next(out, 200ms);
        if (ctx->truncate && !out.empty()) {
          const std::string first = out.substr(0, out.find('\n'));
          sink.write(first.data(), first.size() / 2);
          return false;  // cut the connection mid-line
        }
        const auto delay = faults_.watch_line_delay();
        size_t start = 0;
        while (start < out.size()) {
          size_t end = out.find('\n', start);
          end = end == std::string::npos ? out.size() : end + 1;
          if (delay.count() > 0) {
            auto until = std::chrono::steady_clock::now() + delay;
            while (std::chrono::steady_clock::now() < until && !stopping_)
              std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(delay, 50ms));
            if (stopping_ || faults_.watch_generation() != ctx->generation) return false;
          }
          if (!sink.write(out.data() + start, end - start)) return false;
          start = end;
        }
        if (step == WatchStream::Step::End) sink.done();
        return true;
      });
}

// ---------------------------------------------------------------------------------------
// Control endpoints for tests in other processes (not part of the Kubernetes API).

void FakeApiServer::handle_control(const httplib::Request& req, httplib::Response& res) {
  const std::string what = req.path.substr(std::string("/fakeapi/").size());
  auto count = [&](int def) {
    return req.has_param("count") ? std::atoi(param(req, "count").c_str()) : def;
  };
  auto list_param = [&](const char* key) {
    std::vector<std::string> out;
    for (auto& s : split(param(req, key), ','))
      if (!s.empty()) out.push_back(s);
    return out;
  };
  json reply = {{"ok", true}};
  if (what == "healthz") {
  } else if (what == "faults/drop-watches") {
    faults_.drop_watches();
  } else if (what == "faults/expire-watch") {
    faults_.expire_next_watches(count(1));
  } else if (what == "faults/fail") {
    faults_.fail_next_requests(count(1), req.has_param("code") ? std::atoi(param(req, "code").c_str()) : 500);
  } else if (what == "faults/watch-delay") {
    faults_.set_watch_line_delay(std::chrono::milliseconds(std::atol(param(req, "ms").c_str())));
  } else if (what == "faults/truncate-watch") {
    faults_.truncate_next_watch();
  } else if (what == "faults/malformed-watch") {
    faults_.malform_next_watch();
  } else if (what == "faults/reset") {
    faults_.reset();
  } else if (what == "compact") {
    store_->compact();
  } else if (what == "restart") {
    const auto downtime = std::chrono::milliseconds(std::atol(param(req, "downtime_ms").c_str()));
    std::lock_guard lock(restart_mutex_);
    if (restart_thread_.joinable()) restart_thread_.join();
    // Not on this worker thread: stopping joins the workers.
    restart_thread_ = std::thread([this, downtime] {
      std::this_thread::sleep_for(50ms);  // let this reply go out
      restart(downtime);
    });
    res.status = 202;
  } else if (what == "tokens") {
    access_.add_token(param(req, "token"), {param(req, "user"), list_param("groups")});
  } else if (what == "allow") {
    PolicyRule rule;
    rule.verbs = list_param("verbs");
    rule.resources = list_param("resources");
    rule.namespaces = list_param("namespaces");
    if (req.has_param("groups")) rule.api_groups = list_param("groups");
    access_.allow(param(req, "user"), rule);
  } else if (what == "client-certificate") {
    auto kp = mint_client_certificate(param(req, "user"), list_param("groups"));
    reply = {{"certificate", kp.cert_pem}, {"key", kp.key_pem}, {"ca", ca_->ca_pem()},
             {"kubeconfig", kubeconfig("    client-certificate-data: " + base64_encode(kp.cert_pem) +
                                       "\n    client-key-data: " + base64_encode(kp.key_pem) + "\n")}};
  } else if (what == "stats") {
    reply = {{"requests", requests_.load()},
             {"resourceVersion", store_->resource_version()},
             {"compactedResourceVersion", store_->compacted_resource_version()}};
  } else {
    throw ApiError(404, "NotFound", "unknown fakeapi control endpoint /fakeapi/" + what);
  }
  if (res.status != 202) res.status = 200;
  res.set_content(reply.dump(), "application/json");
}

}  // namespace podgauge::fakeapi
