#pragma once

#include <ostream>

namespace podgauge::cli {

/// `podgauge agent [flags]`: argv holds the arguments after "agent".
int agent_main(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace podgauge::cli
