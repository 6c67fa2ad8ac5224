#pragma once
// `podgauge top pods|containers` and `podgauge breaches`, from one agent (--agent URL).
#include <ostream>

namespace podgauge::cli {

/// argv: the arguments after "top". Returns 0, 1 (agent error) or 2 (usage error).
int top_main(int argc, char** argv, std::ostream& out, std::ostream& err);
/// argv: the arguments after "breaches".
int breaches_main(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace podgauge::cli
