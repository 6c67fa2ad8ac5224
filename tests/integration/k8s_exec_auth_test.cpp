// ApiClient with an exec credential plugin against the fake API server over HTTPS: the
// plugin's token (and client certificate) authenticate, a revoked token makes the client run
// the plugin again after the 401, and an expired credential is refreshed before use.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "fake_api_server.h"
#include "podgauge/k8s/api_client.h"
#include "podgauge/k8s/kubeconfig.h"

using namespace podgauge::k8s;
using nlohmann::json;
namespace fa = podgauge::fakeapi;
namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A kubeconfig for `api` whose user is `exec_block` (the cluster part of the fake's own).
fs::path exec_kubeconfig(const fa::FakeApiServer& api, const fs::path& dir,
                         const std::string& exec_block) {
  std::string text = read(api.token_kubeconfig());
  text = std::regex_replace(text, std::regex("    token: .*"), "    exec:\n" + exec_block);
  fs::path p = dir / "exec-kubeconfig.yaml";
  std::ofstream(p) << text;
  return p;
}

class ExecAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = api_.dir() / "exec";
    fs::create_directories(dir_);
    // The plugin hands out whatever token the test put in `current`, counting its runs.
    fs::path plugin = dir_ / "plugin.sh";
    std::ofstream(plugin)
        << "#!/bin/sh\nd=$(dirname \"$0\")\necho run >> \"$d/runs\"\n"
           "printf '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
           "v1\",\"status\":{\"token\":\"%s\"}}\\n' \"$(cat \"$d/current\")\"\n";
    ::chmod(plugin.c_str(), 0755);
  }
  int runs() {
    std::ifstream in(dir_ / "runs");
    int n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  }
  RestConfig load(const fs::path& kubeconfig) {
    KubeconfigOptions o;
    o.kubeconfig = kubeconfig.string();
    return load_kubeconfig(o);
  }
  fa::FakeApiServer api_;
  fs::path dir_;
};

TEST_F(ExecAuth, the_plugin_token_authenticates_and_a_401_runs_it_again) {
  api_.add_token("exec-token-1", {"exec-user", {"system:masters"}});
  std::ofstream(dir_ / "current") << "exec-token-1";
  auto rc = load(exec_kubeconfig(api_, api_.dir(),
                                 "      apiVersion: client.authentication.k8s.io/v1\n"
                                 "      command: ./exec/plugin.sh\n"
                                 "      interactiveMode: Never\n"));
  ASSERT_TRUE(rc.exec.has_value());
  ApiClient client(rc);
  EXPECT_EQ(json::parse(client.get("/api/v1/namespaces"))["kind"], "NamespaceList");
  client.get("/api/v1/namespaces/default");
  EXPECT_EQ(runs(), 1);  // cached: no expiry given

  // The token is revoked and the plugin now hands out a new one.
  api_.remove_token("exec-token-1");
  api_.add_token("exec-token-2", {"exec-user", {"system:masters"}});
  std::ofstream(dir_ / "current") << "exec-token-2";
  EXPECT_EQ(json::parse(client.get("/api/v1/namespaces"))["kind"], "NamespaceList");
  EXPECT_EQ(runs(), 2);

  // A plugin whose credential the server never accepts: one re-run, then the 401.
  std::ofstream(dir_ / "current") << "never-valid";
  api_.remove_token("exec-token-2");
  try {
    client.get("/api/v1/namespaces");
    FAIL() << "expected 401";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.kind(), ApiErrorKind::Unauthorized);
    EXPECT_NE(std::string(e.what()).find("Unauthorized"), std::string::npos) << e.what();
  }
  EXPECT_EQ(runs(), 3);
}

TEST_F(ExecAuth, a_plugin_client_certificate_authenticates) {
  auto pair = api_.mint_client_certificate("exec-cert-user", {"system:masters"});
  json cred = {{"kind", "ExecCredential"},
               {"apiVersion", "client.authentication.k8s.io/v1beta1"},
               {"status",
                {{"clientCertificateData", pair.cert_pem},
                 {"clientKeyData", pair.key_pem},
                 {"expirationTimestamp", "2099-01-01T00:00:00Z"}}}};
  std::ofstream(dir_ / "cred.json") << cred.dump();
  std::ofstream(dir_ / "cert.sh") << "#!/bin/sh\ncat \"$(dirname \"$0\")/cred.json\"\n";
  ::chmod((dir_ / "cert.sh").c_str(), 0755);
  auto rc = load(exec_kubeconfig(api_, api_.dir(),
                                 "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                                 "      command: ./exec/cert.sh\n"));
  ApiClient client(rc);
  EXPECT_EQ(json::parse(client.get("/api/v1/namespaces"))["kind"], "NamespaceList");
  // No token anywhere: the certificate authenticated. A plugin printing nothing usable is an
  // error, never an anonymous request.
  std::ofstream(dir_ / "cred.json") << "{}";
  ApiClient broken(rc);
  EXPECT_THROW(broken.get("/api/v1/namespaces"), ExecCredentialError);
}

TEST_F(ExecAuth, a_failing_plugin_surfaces_its_error_to_the_caller) {
  std::ofstream(dir_ / "fail.sh") << "#!/bin/sh\necho 'token expired, run: login' >&2\nexit 1\n";
  ::chmod((dir_ / "fail.sh").c_str(), 0755);
  auto rc = load(exec_kubeconfig(api_, api_.dir(),
                                 "      apiVersion: client.authentication.k8s.io/v1\n"
                                 "      command: ./exec/fail.sh\n"
                                 "      installHint: get it from the platform team\n"));
  ApiClient client(rc);
  try {
    client.get("/api/v1/namespaces");
    FAIL() << "expected an error";
  } catch (const ExecCredentialError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("token expired, run: login"), std::string::npos) << m;
    EXPECT_NE(m.find("get it from the platform team"), std::string::npos) << m;
  }
}

}  // namespace
