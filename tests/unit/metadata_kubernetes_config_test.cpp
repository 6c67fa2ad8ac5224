// How the agent finds its Kubernetes configuration, as kubectl does: --kubeconfig, KUBECONFIG,
// ~/.kube/config, else standalone; --no-kube wins; explicit mistakes are refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "podgauge/k8s/kubeconfig.h"
#include "podgauge/metadata/kubernetes_metadata.h"

namespace fs = std::filesystem;
using podgauge::metadata::KubernetesMetadata;
using podgauge::metadata::KubernetesMetadataOptions;

namespace {

class KubernetesConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pg-kcfg-" + std::to_string(getpid()));
    fs::create_directories(dir_ / "home" / ".kube");
    fs::create_directories(dir_ / "empty-home");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& server) {
    auto p = dir_ / name;
    std::ofstream(p)
        << "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " << server
        << "\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\n"
        << "contexts:\n- name: main\n  context: {cluster: c, user: u}\n"
        << "- name: alt\n  context: {cluster: c, user: u, namespace: x}\ncurrent-context: main\n";
    return p;
  }
  KubernetesMetadataOptions options(const std::string& home, const std::string& env = "") {
    KubernetesMetadataOptions o;
    o.home = (dir_ / home).string();
    o.kubeconfig_env = env;
    o.node_name = "n1";
    o.log = [this](const std::string& m) { logged_ += m + "\n"; };
    return o;
  }
  fs::path dir_;
  std::string logged_;
};

}  // namespace

TEST_F(KubernetesConfig, nothing_found_is_standalone) {
  KubernetesMetadata k(options("empty-home"));
  EXPECT_FALSE(k.enabled());
  EXPECT_EQ(k.status().mode, "standalone");
  EXPECT_FALSE(k.status().synced);
  EXPECT_NE(k.describe().find("standalone"), std::string::npos);
}

TEST_F(KubernetesConfig, home_kube_config_then_KUBECONFIG_then_the_flag_each_take_precedence) {
  fs::copy_file(write("h", "https://127.0.0.1:1"), dir_ / "home" / ".kube" / "config");
  {
    KubernetesMetadata k(options("home"));
    EXPECT_EQ(k.status().mode, "kubeconfig");
    EXPECT_EQ(k.status().server, "https://127.0.0.1:1");
    EXPECT_EQ(k.status().context, "main");
  }
  const auto env = write("env", "https://127.0.0.1:2");
  {
    KubernetesMetadata k(options("home", env.string()));
    EXPECT_EQ(k.status().server, "https://127.0.0.1:2");
  }
  auto o = options("home", env.string());
  o.kubeconfig = write("flag", "https://127.0.0.1:3").string();
  o.context = "alt";
  KubernetesMetadata k(o);
  EXPECT_EQ(k.status().server, "https://127.0.0.1:3");
  EXPECT_EQ(k.status().context, "alt");
  EXPECT_NE(k.describe().find("spec.nodeName=n1"), std::string::npos) << k.describe();
}

TEST_F(KubernetesConfig, no_kube_wins_over_any_configuration) {
  auto o = options("home", write("env", "https://127.0.0.1:2").string());
  o.disabled = true;
  KubernetesMetadata k(o);
  EXPECT_FALSE(k.enabled());
  EXPECT_EQ(k.status().mode, "standalone");
}

TEST_F(KubernetesConfig, explicit_mistakes_are_refused_and_a_broken_found_config_runs_standalone) {
  auto o = options("empty-home");
  o.kubeconfig = (dir_ / "missing").string();
  EXPECT_THROW(KubernetesMetadata{o}, podgauge::k8s::ConfigError);
  o = options("empty-home");
  o.kubeconfig = write("flag", "https://127.0.0.1:3").string();
  o.context = "nope";
  EXPECT_THROW(KubernetesMetadata{o}, podgauge::k8s::ConfigError);

  std::ofstream(dir_ / "home" / ".kube" / "config") << "current-context: gone\n";
  KubernetesMetadata k(options("home"));
  EXPECT_FALSE(k.enabled());
  EXPECT_EQ(k.status().mode, "standalone");
  EXPECT_FALSE(k.status().error.empty());
  EXPECT_NE(logged_.find("standalone"), std::string::npos) << logged_;
}
