// libFuzzer target: an exec credential plugin's stdout is whatever the plugin prints. Parsing
// it must never crash; it either yields a usable credential or an ExecCredentialError.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "podgauge/k8s/exec_credential.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace podgauge::k8s;
  ExecConfig config;
  config.command = "fuzz-plugin";
  config.user = "user \"fuzz\"";
  config.api_version =
      size % 2 ? "client.authentication.k8s.io/v1" : "client.authentication.k8s.io/v1beta1";
  try {
    ExecCredential c =
        parse_exec_credential(std::string_view(reinterpret_cast<const char*>(data), size), config);
    if (c.token.empty() && (c.client_certificate_pem.empty() || c.client_key_pem.empty()))
      std::abort();
  } catch (const ExecCredentialError&) {
  }
  return 0;
}
