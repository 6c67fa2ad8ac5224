#include "podgauge/k8s/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace podgauge::k8s {
namespace fs = std::filesystem;

namespace {

std::string env_or(const std::optional<std::string>& override_, const char* name) {
  if (override_) return *override_;
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string read_text(const fs::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    bool exists = fs::exists(path, ec);
    throw ConfigError("cannot read " + what + " " + path.string() + ": " +
                      (exists ? "permission denied" : "no such file"));
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string base64_decode(const std::string& in, const std::string& field) {
  static const auto table = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = i;
    return t;
  }();
  std::string out;
  int val = 0, bits = -8;
  for (unsigned char c : in) {
    if (c == '=') break;
    if (std::isspace(c)) continue;
    if (table[c] < 0) throw ConfigError(field + " is not valid base64");
    val = (val << 6) + table[c];
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

struct Named {
  YAML::Node node;
  fs::path dir;  // of the file that defined it
};

struct Merged {
  std::map<std::string, Named> clusters, users, contexts;
  std::vector<std::string> context_order;
  std::string current_context;
  std::vector<std::string> files;
};

void merge_file(const fs::path& path, Merged& m) {
  std::string text = read_text(path, "kubeconfig");
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("kubeconfig " + path.string() + " is not valid YAML: " + e.what());
  }
  m.files.push_back(path.string());
  if (!root || root.IsNull()) return;
  if (!root.IsMap()) throw ConfigError("kubeconfig " + path.string() + " is not a mapping");
  fs::path dir = fs::absolute(path).parent_path();
  auto add = [&](const char* list, const char* inner, std::map<std::string, Named>& into,
                 std::vector<std::string>* order) {
    const YAML::Node items = root[list];
    if (!items || items.IsNull()) return;
    if (!items.IsSequence())
      throw ConfigError("kubeconfig " + path.string() + ": " + list + " is not a list");
    for (const auto& item : items) {
      if (!item["name"]) continue;
      auto name = item["name"].as<std::string>();
      if (into.count(name)) continue;  // the first file to define a name wins
      into[name] = Named{item[inner] ? item[inner] : YAML::Node(YAML::NodeType::Map), dir};
      if (order) order->push_back(name);
    }
  };
  add("clusters", "cluster", m.clusters, nullptr);
  add("users", "user", m.users, nullptr);
  add("contexts", "context", m.contexts, &m.context_order);
  if (m.current_context.empty() && root["current-context"] && !root["current-context"].IsNull())
    m.current_context = root["current-context"].as<std::string>();
}

std::string str(const YAML::Node& n, const char* key) {
  auto v = n[key];
  return v && !v.IsNull() ? v.as<std::string>() : std::string();
}

fs::path resolve(const fs::path& dir, const std::string& p) {
  if (p.empty()) return {};
  fs::path path(p);
  if (p.rfind("~/", 0) == 0) {
    if (const char* home = std::getenv("HOME")) path = fs::path(home) / p.substr(2);
  }
  return path.is_absolute() ? path : dir / path;
}

void require_file(const fs::path& p, const std::string& what, const std::string& where) {
  std::error_code ec;
  if (!p.empty() && !fs::exists(p, ec))
    throw ConfigError(what + " " + p.string() + " (" + where + ") does not exist");
}

}  // namespace

RestConfig load_kubeconfig(const KubeconfigOptions& options) {
  Merged m;
  if (!options.kubeconfig.empty()) {
    if (!fs::exists(options.kubeconfig))
      throw ConfigError("kubeconfig " + options.kubeconfig + " (--kubeconfig) does not exist");
    merge_file(options.kubeconfig, m);
  } else {
    std::string env = env_or(options.kubeconfig_env, "KUBECONFIG");
    if (!env.empty()) {
      std::stringstream s(env);
      for (std::string part; std::getline(s, part, ':');)
        if (!part.empty() && fs::exists(part)) merge_file(part, m);  // kubectl skips missing ones
      if (m.files.empty()) throw ConfigError("none of the files in KUBECONFIG=" + env + " exists");
    } else {
      std::string home = env_or(options.home, "HOME");
      fs::path def = fs::path(home) / ".kube" / "config";
      if (home.empty() || !fs::exists(def))
        throw ConfigError("no kubeconfig: pass --kubeconfig, set KUBECONFIG or create " +
                          def.string());
      merge_file(def, m);
    }
  }
  std::string sources;
  for (const auto& f : m.files) sources += (sources.empty() ? "" : ":") + f;

  std::string ctx_name = options.context.empty() ? m.current_context : options.context;
  if (ctx_name.empty())
    throw ConfigError(
        "kubeconfig " + sources +
        " sets no current-context: pass --context or run `kubectl config use-context NAME`");
  auto ctx = m.contexts.find(ctx_name);
  if (ctx == m.contexts.end()) {
    std::string known;
    for (const auto& n : m.context_order) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("context \"" + ctx_name + "\" not found in kubeconfig " + sources +
                      "; known contexts: " + (known.empty() ? "(none)" : known));
  }
  const YAML::Node& c = ctx->second.node;
  std::string cluster_name = str(c, "cluster"), user_name = str(c, "user");
  auto cl = m.clusters.find(cluster_name);
  if (cl == m.clusters.end())
    throw ConfigError("context \"" + ctx_name + "\" names cluster \"" + cluster_name +
                      "\", which kubeconfig " + sources + " does not define");

  RestConfig rc;
  rc.context = ctx_name;
  rc.source = sources;
  rc.namespace_ = str(c, "namespace");
  if (rc.namespace_.empty()) rc.namespace_ = "default";

  const YAML::Node& cn = cl->second.node;
  std::string where = "cluster \"" + cluster_name + "\" in " + sources;
  rc.server = str(cn, "server");
  if (rc.server.empty()) throw ConfigError(where + " has no server");
  while (!rc.server.empty() && rc.server.back() == '/') rc.server.pop_back();
  if (auto d = str(cn, "certificate-authority-data"); !d.empty())
    rc.ca_pem = base64_decode(d, "certificate-authority-data of " + where);
  else if (auto f = str(cn, "certificate-authority"); !f.empty()) {
    rc.ca_file = resolve(cl->second.dir, f);
    require_file(rc.ca_file, "certificate-authority", where);
  }
  if (auto v = cn["insecure-skip-tls-verify"]; v && !v.IsNull())
    rc.insecure_skip_tls_verify = v.as<bool>();
  rc.tls_server_name = str(cn, "tls-server-name");

  if (!user_name.empty()) {
    auto us = m.users.find(user_name);
    if (us == m.users.end())
      throw ConfigError("context \"" + ctx_name + "\" names user \"" + user_name +
                        "\", which kubeconfig " + sources + " does not define");
    const YAML::Node& un = us->second.node;
    std::string uwhere = "user \"" + user_name + "\" in " + sources;
    rc.token = str(un, "token");
    if (rc.token.empty()) {
      if (auto f = str(un, "tokenFile"); !f.empty()) {
        rc.token_file = resolve(us->second.dir, f);
        require_file(rc.token_file, "tokenFile", uwhere);
      }
    }
    if (auto d = str(un, "client-certificate-data"); !d.empty())
      rc.client_certificate_pem = base64_decode(d, "client-certificate-data of " + uwhere);
    else if (auto f = str(un, "client-certificate"); !f.empty()) {
      rc.client_certificate_file = resolve(us->second.dir, f);
      require_file(rc.client_certificate_file, "client-certificate", uwhere);
    }
    if (auto d = str(un, "client-key-data"); !d.empty())
      rc.client_key_pem = base64_decode(d, "client-key-data of " + uwhere);
    else if (auto f = str(un, "client-key"); !f.empty()) {
      rc.client_key_file = resolve(us->second.dir, f);
      require_file(rc.client_key_file, "client-key", uwhere);
    }
    bool has_cert = !rc.client_certificate_pem.empty() || !rc.client_certificate_file.empty();
    bool has_key = !rc.client_key_pem.empty() || !rc.client_key_file.empty();
    if (has_cert != has_key)
      throw ConfigError(uwhere + " has a client " +
                        (has_cert ? "certificate but no key" : "key but no certificate"));
    if (const YAML::Node ex = un["exec"];
        ex && !ex.IsNull() && rc.token.empty() && rc.token_file.empty() && !has_cert) {
      ExecConfig e;
      e.user = uwhere;
      e.command = str(ex, "command");
      if (e.command.empty()) throw ConfigError(uwhere + ": exec has no command");
      // client-go resolves a command with a path relative to the kubeconfig's directory.
      if (e.command.find('/') != std::string::npos)
        e.command = resolve(us->second.dir, e.command).lexically_normal().string();
      e.api_version = str(ex, "apiVersion");
      if (e.api_version != "client.authentication.k8s.io/v1" &&
          e.api_version != "client.authentication.k8s.io/v1beta1")
        throw ConfigError(uwhere + ": exec apiVersion \"" + e.api_version +
                          "\" is not supported; use client.authentication.k8s.io/v1 or v1beta1");
      if (const YAML::Node a = ex["args"]; a && a.IsSequence())
        for (const auto& arg : a) e.args.push_back(arg.as<std::string>());
      if (const YAML::Node en = ex["env"]; en && en.IsSequence())
        for (const auto& kv : en) e.env.emplace_back(str(kv, "name"), str(kv, "value"));
      e.install_hint = str(ex, "installHint");
      if (auto v = ex["provideClusterInfo"]; v && !v.IsNull()) e.provide_cluster_info = v.as<bool>();
      if (auto m = str(ex, "interactiveMode"); !m.empty()) e.interactive_mode = m;
      e.cluster_server = rc.server;
      e.cluster_tls_server_name = rc.tls_server_name;
      e.cluster_insecure_skip_tls_verify = rc.insecure_skip_tls_verify;
      e.cluster_ca_pem = !rc.ca_pem.empty() ? rc.ca_pem
                         : rc.ca_file.empty() ? std::string()
                                              : read_text(rc.ca_file, "certificate-authority");
      rc.exec = std::move(e);
    }
  }
  return rc;
}

bool in_cluster_available(const InClusterOptions& options) {
  return !env_or(options.host, "KUBERNETES_SERVICE_HOST").empty() &&
         !env_or(options.port, "KUBERNETES_SERVICE_PORT").empty();
}

RestConfig in_cluster_config(const InClusterOptions& options) {
  std::string host = env_or(options.host, "KUBERNETES_SERVICE_HOST");
  std::string port = env_or(options.port, "KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty())
    throw ConfigError(
        "not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set; "
        "pass --kubeconfig");
  RestConfig rc;
  rc.source = "in-cluster";
  // An IPv6 service host needs brackets in the URL.
  rc.server =
      "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  const auto& dir = options.service_account_dir;
  rc.token_file = dir / "token";
  if (read_text(rc.token_file, "service-account token").empty())
    throw ConfigError("service-account token " + rc.token_file.string() + " is empty");
  std::error_code ec;
  if (fs::exists(dir / "ca.crt", ec)) rc.ca_file = dir / "ca.crt";
  if (fs::exists(dir / "namespace", ec)) {
    std::string ns = read_text(dir / "namespace", "service-account namespace");
    while (!ns.empty() && std::isspace(static_cast<unsigned char>(ns.back()))) ns.pop_back();
    if (!ns.empty()) rc.namespace_ = ns;
  }
  return rc;
}

std::optional<RestConfig> auto_config(const KubeconfigOptions& options) {
  if (!options.kubeconfig.empty() || !env_or(options.kubeconfig_env, "KUBECONFIG").empty())
    return load_kubeconfig(options);
  std::string home = env_or(options.home, "HOME");
  if (!home.empty() && fs::exists(fs::path(home) / ".kube" / "config"))
    return load_kubeconfig(options);
  if (in_cluster_available()) return in_cluster_config();
  return std::nullopt;
}

}  // namespace podgauge::k8s
