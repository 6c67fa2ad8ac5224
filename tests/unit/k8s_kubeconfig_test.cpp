#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "podgauge/k8s/kubeconfig.h"

namespace fs = std::filesystem;
using namespace podgauge::k8s;

namespace {

class Kubeconfig : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "podgauge-kubeconfig-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }
  RestConfig load(const fs::path& p, const std::string& context = "") {
    KubeconfigOptions o;
    o.kubeconfig = p.string();
    o.context = context;
    return load_kubeconfig(o);
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path dir_;
};

// base64("CA-PEM"), base64("CERT"), base64("KEY")
const char* kTwoContexts = R"(apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: Q0EtUEVN
    tls-server-name: api.prod.internal
- name: dev
  cluster:
    server: https://dev.example:443
    certificate-authority: certs/ca.crt
- name: lab
  cluster:
    server: http://127.0.0.1:8080
    insecure-skip-tls-verify: true
users:
- name: tok
  user:
    token: abc123
- name: file-tok
  user:
    tokenFile: secrets/token
- name: cert-data
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
- name: cert-files
  user:
    client-certificate: certs/client.crt
    client-key: /abs/client.key
contexts:
- name: prod-admin
  context: {cluster: prod, user: tok, namespace: shop}
- name: dev-files
  context: {cluster: dev, user: cert-files}
- name: dev-token-file
  context: {cluster: dev, user: file-tok}
- name: lab-certs
  context: {cluster: lab, user: cert-data}
current-context: prod-admin
)";

}  // namespace

TEST_F(Kubeconfig, token_user_with_inline_ca_and_namespace) {
  auto rc = load(write("config", kTwoContexts));
  EXPECT_EQ(rc.context, "prod-admin");
  EXPECT_EQ(rc.server, "https://10.0.0.1:6443");
  EXPECT_EQ(rc.ca_pem, "CA-PEM");
  EXPECT_EQ(rc.tls_server_name, "api.prod.internal");
  EXPECT_EQ(rc.token, "abc123");
  EXPECT_EQ(rc.namespace_, "shop");
  EXPECT_FALSE(rc.insecure_skip_tls_verify);
}

TEST_F(Kubeconfig, client_certificate_files_resolve_against_the_kubeconfig_directory) {
  write("kube/certs/ca.crt", "x");
  write("kube/certs/client.crt", "x");
  std::string text = kTwoContexts;
  text.replace(text.find("/abs/client.key"), 15, (dir_ / "client.key").string());
  write("client.key", "k");
  auto rc = load(write("kube/config", text), "dev-files");
  EXPECT_EQ(rc.ca_file, dir_ / "kube/certs/ca.crt");
  EXPECT_EQ(rc.client_certificate_file, dir_ / "kube/certs/client.crt");
  EXPECT_EQ(rc.client_key_file, dir_ / "client.key");
  EXPECT_EQ(rc.namespace_, "default");
  EXPECT_TRUE(rc.token.empty());
}

TEST_F(Kubeconfig, token_file_is_kept_as_a_path_for_rotation) {
  write("kube/certs/ca.crt", "x");
  write("kube/secrets/token", "t0\n");
  auto rc = load(write("kube/config", kTwoContexts), "dev-token-file");
  EXPECT_EQ(rc.token_file, dir_ / "kube/secrets/token");
}

TEST_F(Kubeconfig, client_certificate_data_and_insecure_skip_verify) {
  auto rc = load(write("config", kTwoContexts), "lab-certs");
  EXPECT_EQ(rc.client_certificate_pem, "CERT");
  EXPECT_EQ(rc.client_key_pem, "KEY");
  EXPECT_TRUE(rc.insecure_skip_tls_verify);
  EXPECT_EQ(rc.server, "http://127.0.0.1:8080");
}

TEST_F(Kubeconfig, unknown_context_lists_the_known_ones) {
  auto p = write("config", kTwoContexts);
  auto msg = error_of([&] { load(p, "staging"); });
  EXPECT_NE(msg.find("context \"staging\" not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("prod-admin, dev-files, dev-token-file, lab-certs"), std::string::npos) << msg;
}

TEST_F(Kubeconfig, missing_file_and_missing_referenced_file_are_named) {
  auto msg = error_of([&] { load(dir_ / "nope"); });
  EXPECT_NE(msg.find((dir_ / "nope").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  auto p = write("config", kTwoContexts);
  msg = error_of([&] { load(p, "dev-files"); });
  EXPECT_NE(msg.find("certs/ca.crt"), std::string::npos) << msg;
}

TEST_F(Kubeconfig, no_current_context_says_how_to_choose_one) {
  std::string text = kTwoContexts;
  text.erase(text.find("current-context"));
  auto p = write("config", text);
  auto msg = error_of([&] { load(p); });
  EXPECT_NE(msg.find("no current-context"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--context"), std::string::npos) << msg;
  EXPECT_EQ(load(p, "lab-certs").context, "lab-certs");
}

TEST_F(Kubeconfig, kubeconfig_env_merges_files_first_definition_wins) {
  auto a = write("a.yaml", R"(apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://first:6443"}
users:
- name: u
  user: {token: first}
contexts: []
)");
  auto b = write("b.yaml", R"(apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://second:6443"}
- name: only-b
  cluster: {server: "https://b:6443"}
users:
- name: u
  user: {token: second}
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: ns-b}
- name: ctx-b
  context: {cluster: only-b, user: u}
current-context: ctx
)");
  KubeconfigOptions o;
  o.kubeconfig_env = a.string() + ":" + (dir_ / "missing.yaml").string() + ":" + b.string();
  auto rc = load_kubeconfig(o);
  EXPECT_EQ(rc.context, "ctx");
  EXPECT_EQ(rc.server, "https://first:6443");
  EXPECT_EQ(rc.token, "first");
  EXPECT_EQ(rc.namespace_, "ns-b");
  o.context = "ctx-b";
  EXPECT_EQ(load_kubeconfig(o).server, "https://b:6443");
}

TEST_F(Kubeconfig, json_kubeconfig_parses_too) {
  auto p = write("config.json", R"({"apiVersion":"v1","kind":"Config",
    "clusters":[{"name":"c","cluster":{"server":"https://j:6443","insecure-skip-tls-verify":true}}],
    "users":[{"name":"u","user":{"token":"jt"}}],
    "contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],
    "current-context":"x"})");
  auto rc = load(p);
  EXPECT_EQ(rc.server, "https://j:6443");
  EXPECT_EQ(rc.token, "jt");
  EXPECT_TRUE(rc.insecure_skip_tls_verify);
}

TEST_F(Kubeconfig, context_naming_an_undefined_user_is_an_error) {
  auto p = write("config", R"(clusters:
- name: c
  cluster: {server: "https://x:1"}
contexts:
- name: x
  context: {cluster: c, user: ghost}
current-context: x
)");
  auto msg = error_of([&] { load(p); });
  EXPECT_NE(msg.find("user \"ghost\""), std::string::npos) << msg;
}

TEST_F(Kubeconfig, in_cluster_reads_the_service_account_directory) {
  write("sa/token", "sa-token\n");
  write("sa/ca.crt", "pem");
  write("sa/namespace", "monitoring\n");
  InClusterOptions o{.service_account_dir = dir_ / "sa", .host = "10.96.0.1", .port = "443"};
  EXPECT_TRUE(in_cluster_available(o));
  auto rc = in_cluster_config(o);
  EXPECT_EQ(rc.server, "https://10.96.0.1:443");
  EXPECT_EQ(rc.token_file, dir_ / "sa/token");
  EXPECT_EQ(rc.ca_file, dir_ / "sa/ca.crt");
  EXPECT_EQ(rc.namespace_, "monitoring");
  o.host = "fd00::1";
  EXPECT_EQ(in_cluster_config(o).server, "https://[fd00::1]:443");
}

TEST_F(Kubeconfig, in_cluster_outside_a_pod_says_so) {
  InClusterOptions o{.service_account_dir = dir_ / "sa", .host = "", .port = ""};
  EXPECT_FALSE(in_cluster_available(o));
  auto msg = error_of([&] { in_cluster_config(o); });
  EXPECT_NE(msg.find("KUBERNETES_SERVICE_HOST"), std::string::npos) << msg;
  o.host = "10.0.0.1";
  o.port = "443";
  msg = error_of([&] { in_cluster_config(o); });
  EXPECT_NE(msg.find("service-account token"), std::string::npos) << msg;
}
