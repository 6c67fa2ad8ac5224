// Exec credential plugins: real shell-script plugins written to a temp dir, run as kubectl
// runs them (args, env, KUBERNETES_EXEC_INFO), their output parsed, cached until expiry.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "podgauge/k8s/exec_credential.h"
#include "podgauge/k8s/kubeconfig.h"

namespace fs = std::filesystem;
using namespace podgauge::k8s;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

class ExecPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/bin/sh")) GTEST_FAIL() << "/bin/sh is needed to run the test plugins";
    std::string tmpl = (fs::temp_directory_path() / "podgauge-exec-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path script(const std::string& name, const std::string& body) {
    fs::path p = dir_ / name;
    std::ofstream(p) << "#!/bin/sh\n" << body;
    ::chmod(p.c_str(), 0755);
    return p;
  }
  fs::path kubeconfig(const std::string& exec_block, const std::string& cluster_extra = "") {
    fs::path p = dir_ / "kubeconfig";
    std::ofstream(p) << "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                        "clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:6443\n"
                     << cluster_extra
                     << "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                        "users:\n- name: u\n  user:\n    exec:\n"
                     << exec_block;
    return p;
  }
  RestConfig load(const fs::path& p) {
    KubeconfigOptions o;
    o.kubeconfig = p.string();
    return load_kubeconfig(o);
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(no error)";
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  // A plugin printing a token credential; records its args, env and runs.
  fs::path token_plugin(const std::string& api_version, const std::string& expiry_cmd = "") {
    return script("plugin.sh",
                  "echo \"$@\" > \"$(dirname \"$0\")/args\"\n"
                  "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$(dirname \"$0\")/info\"\n"
                  "echo \"$PLUGIN_REGION\" > \"$(dirname \"$0\")/env\"\n"
                  "echo run >> \"$(dirname \"$0\")/runs\"\n"
                  "n=$(wc -l < \"$(dirname \"$0\")/runs\")\n" +
                      (expiry_cmd.empty() ? std::string("exp=''\n")
                                          : "exp=\",\\\"expirationTimestamp\\\":\\\"$(" +
                                                expiry_cmd + ")\\\"\"\n") +
                      "echo \"{\\\"kind\\\":\\\"ExecCredential\\\",\\\"apiVersion\\\":\\\"" +
                      api_version + "\\\",\\\"status\\\":{\\\"token\\\":\\\"tok-$n\\\"$exp}}\"\n");
  }
  int runs() {
    std::ifstream in(dir_ / "runs");
    int n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  }
  fs::path dir_;
};

TEST_F(ExecPlugin, kubeconfig_exec_runs_the_plugin_with_args_env_and_exec_info) {
  token_plugin("client.authentication.k8s.io/v1");
  // A relative command with a '/' resolves against the kubeconfig's directory.
  auto rc =
      load(kubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: ./plugin.sh\n"
                      "      args: [get-token, --cluster, prod]\n"
                      "      env: [{name: PLUGIN_REGION, value: eu-west-1}]\n"
                      "      provideClusterInfo: true\n"
                      "      interactiveMode: Never\n"
                      "      installHint: install plugin.sh from example.com\n",
                      "    tls-server-name: api.example\n"));
  ASSERT_TRUE(rc.exec.has_value());
  EXPECT_EQ(rc.exec->command, (dir_ / "plugin.sh").string());
  ExecCredentialProvider provider(*rc.exec);
  auto cred = provider.get();
  EXPECT_EQ(cred.token, "tok-1");
  EXPECT_FALSE(cred.expiration.has_value());
  EXPECT_EQ(read(dir_ / "args"), "get-token --cluster prod\n");
  EXPECT_EQ(read(dir_ / "env"), "eu-west-1\n");
  auto info = json::parse(read(dir_ / "info"));
  EXPECT_EQ(info["kind"], "ExecCredential");
  EXPECT_EQ(info["apiVersion"], "client.authentication.k8s.io/v1");
  EXPECT_EQ(info["spec"]["interactive"], false);
  EXPECT_EQ(info["spec"]["cluster"]["server"], "https://127.0.0.1:6443");
  EXPECT_EQ(info["spec"]["cluster"]["tls-server-name"], "api.example");
  // Without an expiry the credential is kept until invalidated (a 401).
  EXPECT_EQ(provider.get().token, "tok-1");
  EXPECT_EQ(runs(), 1);
  provider.invalidate();
  EXPECT_EQ(provider.get().token, "tok-2");
  EXPECT_EQ(provider.runs(), 2u);
}

TEST_F(ExecPlugin, cluster_info_only_when_asked_and_v1beta1_works) {
  token_plugin("client.authentication.k8s.io/v1beta1");
  auto rc =
      load(kubeconfig("      apiVersion: client.authentication.k8s.io/v1beta1\n"
                      "      command: " +
                      (dir_ / "plugin.sh").string() + "\n"));
  ASSERT_TRUE(rc.exec.has_value());
  EXPECT_EQ(run_exec_plugin(*rc.exec).token, "tok-1");
  auto info = json::parse(read(dir_ / "info"));
  EXPECT_EQ(info["apiVersion"], "client.authentication.k8s.io/v1beta1");
  EXPECT_FALSE(info["spec"].contains("cluster"));
}

TEST_F(ExecPlugin, a_command_on_path_is_found) {
  token_plugin("client.authentication.k8s.io/v1");
  std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", (dir_.string() + ":" + old_path).c_str(), 1);
  auto rc =
      load(kubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: plugin.sh\n"));
  std::string token;
  EXPECT_NO_THROW(token = run_exec_plugin(*rc.exec).token);
  setenv("PATH", old_path.c_str(), 1);
  EXPECT_EQ(token, "tok-1");
}

TEST_F(ExecPlugin, the_credential_is_cached_until_its_expiration) {
  token_plugin("client.authentication.k8s.io/v1", "date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ");
  auto rc =
      load(kubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: ./plugin.sh\n"));
  ExecCredentialProvider provider(*rc.exec);
  auto first = provider.get();
  ASSERT_TRUE(first.expiration.has_value());
  EXPECT_GT(*first.expiration, std::chrono::system_clock::now());
  EXPECT_LE(*first.expiration, std::chrono::system_clock::now() + 3s);
  EXPECT_EQ(provider.get().token, "tok-1");
  EXPECT_EQ(runs(), 1);
  std::this_thread::sleep_until(*first.expiration + 100ms);
  EXPECT_EQ(provider.get().token, "tok-2");
  EXPECT_EQ(runs(), 2);
}

TEST_F(ExecPlugin, client_certificate_credentials_are_returned) {
  script("plugin.sh",
         "printf '%s\\n' "
         "'{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
         "\"status\":{\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\nA\\n\","
         "\"clientKeyData\":\"-----BEGIN PRIVATE KEY-----\\nB\\n\","
         "\"expirationTimestamp\":\"2099-01-01T00:00:00+01:00\"}}'\n");
  auto rc =
      load(kubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: ./plugin.sh\n"));
  auto cred = run_exec_plugin(*rc.exec);
  EXPECT_TRUE(cred.token.empty());
  EXPECT_EQ(cred.client_certificate_pem, "-----BEGIN CERTIFICATE-----\nA\n");
  EXPECT_EQ(cred.client_key_pem, "-----BEGIN PRIVATE KEY-----\nB\n");
  ASSERT_TRUE(cred.expiration.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*cred.expiration), 4070905200);
}

TEST_F(ExecPlugin, a_failing_plugin_gives_its_exit_code_stderr_and_install_hint) {
  script("plugin.sh", "echo 'error: you must log in first (run: sso login)' >&2\nexit 3\n");
  auto rc =
      load(kubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: ./plugin.sh\n"
                      "      installHint: install it with apt-get install sso-plugin\n"));
  auto err = error_of([&] { run_exec_plugin(*rc.exec); });
  EXPECT_NE(err.find("failed with exit code 3"), std::string::npos) << err;
  EXPECT_NE(err.find("you must log in first (run: sso login)"), std::string::npos) << err;
  EXPECT_NE(err.find("install it with apt-get install sso-plugin"), std::string::npos) << err;
  EXPECT_NE(err.find("user \"u\""), std::string::npos) << err;
}

TEST_F(ExecPlugin, a_missing_plugin_shows_the_install_hint) {
  auto rc =
      load(kubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: podgauge-no-such-plugin\n"
                      "      installHint: |\n        podgauge-no-such-plugin is needed; "
                      "see https://example.com/install\n"));
  auto err = error_of([&] { run_exec_plugin(*rc.exec); });
  EXPECT_NE(err.find("\"podgauge-no-such-plugin\" not found"), std::string::npos) << err;
  EXPECT_NE(err.find("see https://example.com/install"), std::string::npos) << err;
}

TEST_F(ExecPlugin, bad_output_is_an_actionable_error) {
  auto rc =
      load(kubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: ./plugin.sh\n"));
  script("plugin.sh", "echo 'Please open https://login.example in a browser'\n");
  auto err = error_of([&] { run_exec_plugin(*rc.exec); });
  EXPECT_NE(err.find("printed no ExecCredential JSON"), std::string::npos) << err;
  EXPECT_NE(err.find("Please open https://login.example"), std::string::npos) << err;

  script("plugin.sh",
         "echo '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
         "v1beta1\",\"status\":{\"token\":\"t\"}}'\n");
  err = error_of([&] { run_exec_plugin(*rc.exec); });
  EXPECT_NE(err.find("apiVersion \"client.authentication.k8s.io/v1beta1\" but the kubeconfig "
                     "asks for \"client.authentication.k8s.io/v1\""),
            std::string::npos)
      << err;

  script("plugin.sh",
         "echo '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
         "\"status\":{}}'\n");
  err = error_of([&] { run_exec_plugin(*rc.exec); });
  EXPECT_NE(err.find("neither status.token nor"), std::string::npos) << err;

  script("plugin.sh",
         "echo '{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\","
         "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"tomorrow\"}}'\n");
  err = error_of([&] { run_exec_plugin(*rc.exec); });
  EXPECT_NE(err.find("invalid expirationTimestamp \"tomorrow\""), std::string::npos) << err;
}

TEST(ExecCredentialOutput, wrong_types_and_malformed_offsets_are_errors_not_crashes) {
  ExecConfig c;
  c.command = "p";
  c.user = "user \"u\"";
  c.api_version = "client.authentication.k8s.io/v1";
  auto err = [&](const std::string& status) {
    try {
      parse_exec_credential(
          R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":)" +
              status + "}",
          c);
    } catch (const ExecCredentialError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err(R"({"token":42})").find("status.token that is not a string"), std::string::npos);
  EXPECT_NE(err(R"({"token":"t","expirationTimestamp":"2026-01-01T00:00:00+1:2"})")
                .find("invalid expirationTimestamp"),
            std::string::npos);
  EXPECT_EQ(err(R"({"token":"t","expirationTimestamp":"2026-01-01T00:00:00.5-02:30"})"),
            "(no error)");
  auto cred = parse_exec_credential(
      R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t","expirationTimestamp":"2026-01-01T00:00:00-02:30"}})",
      c);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*cred.expiration), 1767225600 + 9000);
}

TEST_F(ExecPlugin, a_hanging_plugin_is_killed_after_the_timeout) {
  script("plugin.sh", "sleep 30\n");
  auto rc =
      load(kubeconfig("      apiVersion: client.authentication.k8s.io/v1\n"
                      "      command: ./plugin.sh\n"));
  rc.exec->timeout = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto err = error_of([&] { run_exec_plugin(*rc.exec); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_NE(err.find("did not finish"), std::string::npos) << err;
}

TEST_F(ExecPlugin, an_unsupported_api_version_is_a_config_error) {
  auto err = error_of([&] {
    load(
        kubeconfig("      apiVersion: client.authentication.k8s.io/v1alpha1\n"
                   "      command: ./plugin.sh\n"));
  });
  EXPECT_NE(err.find("v1alpha1\" is not supported"), std::string::npos) << err;
}

}  // namespace
