// podgauge: one binary for the node agent and the kubectl-style CLI (also `kubectl gauge`).
#include <cstring>
#include <iostream>
#include <string>

#include "agent_command.h"
#include "tail.h"
#include "top.h"

namespace {

constexpr const char* kUsage = R"(podgauge: per-pod truth from the kernel.

Usage: podgauge <command> [flags]        (also as a kubectl plugin: kubectl gauge <command>)

Commands:
  agent     run the node agent (eBPF probes, /metrics, /v1/events)
  tail      stream live events (OOM kills, breaches, ...) from an agent
  top       usage of pods, containers or processes against requests and limits
  breaches  containers over their limits, now or over a window
  version   print the version

Run 'podgauge <command> --help' for a command's flags.
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") ||
      !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "agent") return podgauge::cli::agent_main(argc - 2, argv + 2, std::cout, std::cerr);
  if (command == "tail") return podgauge::cli::tail_main(argc - 2, argv + 2, std::cout, std::cerr);
  if (command == "top") return podgauge::cli::top_main(argc - 2, argv + 2, std::cout, std::cerr);
  if (command == "breaches") return podgauge::cli::breaches_main(argc - 2, argv + 2, std::cout, std::cerr);
  if (command == "version" || command == "--version") {
#ifdef PODGAUGE_VERSION
    std::cout << "podgauge " << PODGAUGE_VERSION << "\n";
#endif
    return 0;
  }
  std::cerr << "podgauge: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}
