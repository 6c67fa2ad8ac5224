#pragma once
// `podgauge tail`: print an agent's events live (table or NDJSON).
#include <ostream>
#include <stop_token>

namespace podgauge::cli {

/// Runs `podgauge tail` with `argv` = the arguments after "tail". Handles SIGINT/SIGTERM (stop
/// quietly) and ignores SIGPIPE while it runs. Returns the process exit code: 0 on success or
/// when stopped, 1 on an agent/stream error, 2 on a usage error.
int tail_main(int argc, char** argv, std::ostream& out, std::ostream& err);

/// Same, but stops when `stop` is requested instead of on signals (for embedding and tests).
int tail_main(int argc, char** argv, std::ostream& out, std::ostream& err, std::stop_token stop);

}  // namespace podgauge::cli
