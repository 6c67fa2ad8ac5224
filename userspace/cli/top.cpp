// `podgauge top pods|containers` and `podgauge breaches`: one agent's view, kubectl-style.
#include "top.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent_url.h"

namespace podgauge::cli {

namespace {

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct QueryOptions {
  std::string agent;
  std::string output = "table";
  std::string sort_by = "cpu";
  std::string namespace_;
  bool all_namespaces = true;
  std::optional<double> threshold;
  std::string window;
  std::string resource = "memory";
  bool help = false;
  std::vector<std::string> positional;
};

QueryOptions parse_query_args(int argc, char** argv) {
  QueryOptions o;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i], value;
    bool inline_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1), arg = arg.substr(0, eq), inline_value = true;
    }
    auto need = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") o.help = true;
    else if (arg == "--agent") o.agent = need();
    else if (arg == "-o" || arg == "--output") o.output = need();
    else if (arg == "--sort-by") o.sort_by = need();
    else if (arg == "-n" || arg == "--namespace") o.namespace_ = need(), o.all_namespaces = false;
    else if (arg == "-A" || arg == "--all-namespaces") o.all_namespaces = true, o.namespace_.clear();
    else if (arg == "--threshold") {
      const std::string v = need();
      try {
        size_t used = 0;
        o.threshold = std::stod(v, &used);
        if (used != v.size() || *o.threshold <= 0) throw std::invalid_argument("");
      } catch (const std::exception&) {
        throw UsageError("--threshold wants a percent such as 90, got \"" + v + "\"");
      }
    } else if (arg == "--window") o.window = need();
    else if (arg == "--resource") o.resource = need();
    else if (!arg.empty() && arg[0] == '-') throw UsageError("unknown flag \"" + arg + "\"");
    else o.positional.push_back(arg);
  }
  if (o.output != "table" && o.output != "wide" && o.output != "json")
    throw UsageError("unsupported output \"" + o.output + "\": use table, wide or json");
  if (!o.help && o.agent.empty())
    throw UsageError("--agent URL is required (cluster-wide queries through the API server are not "
                     "implemented yet), e.g. --agent http://127.0.0.1:9742");
  return o;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<double> num(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// kubectl top's units: CPU in millicores, memory in Mi.
std::string cores(std::optional<double> v) {
  if (!v) return "-";
  return std::to_string(std::llround(*v * 1000)) + "m";
}
std::string mebibytes(std::optional<double> v) {
  if (!v) return "-";
  return std::to_string(std::llround(*v / (1024.0 * 1024.0))) + "Mi";
}
std::string percent(std::optional<double> used, std::optional<double> of) {
  if (!used || !of || *of <= 0) return "-";
  return std::to_string(std::llround(100.0 * *used / *of)) + "%";
}
std::string short_id(const std::string& id) { return id.size() > 12 ? id.substr(0, 12) : id; }

void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> widths;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line.append(widths[i] - r[i].size() + 3, ' ');
    }
    out << line << '\n';
  }
}

// One row of `top`: a container, or a pod summed over its containers.
struct UsageRow {
  std::string namespace_, pod, pod_uid, container, container_id;
  std::optional<double> cpu, cpu_request, cpu_limit, memory, memory_request, memory_limit, throttled;
  double oom_kills = 0;
  size_t containers = 0;
};

std::optional<double> add(std::optional<double> a, std::optional<double> b) {
  if (!a || !b) return std::nullopt;
  return *a + *b;
}

nlohmann::json row_json(const UsageRow& r, bool pods) {
  auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json j = {{"namespace", r.namespace_}, {"pod", r.pod}, {"pod_uid", r.pod_uid}};
  if (!pods) j["container"] = r.container, j["container_id"] = r.container_id;
  else j["containers"] = r.containers;
  j["cpu_cores"] = opt(r.cpu);
  j["cpu_request_cores"] = opt(r.cpu_request);
  j["cpu_limit_cores"] = opt(r.cpu_limit);
  j["memory_working_set_bytes"] = opt(r.memory);
  j["memory_request_bytes"] = opt(r.memory_request);
  j["memory_limit_bytes"] = opt(r.memory_limit);
  if (!pods) j["throttled_percent"] = opt(r.throttled);
  j["oom_kills"] = r.oom_kills;
  return j;
}

int top(const QueryOptions& o, std::ostream& out) {
  const bool pods = o.positional[0] == "pods" || o.positional[0] == "pod" || o.positional[0] == "po";
  const nlohmann::json containers = get_agent_json(parse_agent_url(o.agent), "/v1/containers");
  std::vector<UsageRow> rows;
  std::map<std::string, size_t> pod_index;
  for (const auto& c : containers) {
    UsageRow r;
    r.namespace_ = str(c, "namespace");
    r.pod = str(c, "pod");
    r.pod_uid = str(c, "pod_uid");
    r.container = str(c, "container");
    r.container_id = str(c, "container_id");
    if (!o.all_namespaces && r.namespace_ != o.namespace_) continue;
    r.cpu = num(c, "cpu_cores");
    r.cpu_request = num(c, "cpu_request_cores");
    r.cpu_limit = num(c, "cpu_limit_cores");
    r.memory = num(c, "memory_working_set_bytes");
    r.memory_request = num(c, "memory_request_bytes");
    r.memory_limit = num(c, "memory_limit_bytes");
    r.throttled = num(c, "throttled_percent");
    r.oom_kills = num(c, "oom_kills").value_or(0);
    r.containers = 1;
    if (!pods) {
      rows.push_back(std::move(r));
      continue;
    }
    auto [it, fresh] = pod_index.emplace(r.pod_uid, rows.size());
    if (fresh) {
      r.container.clear(), r.container_id.clear();
      rows.push_back(std::move(r));
      continue;
    }
    // A pod's limit exists only if every container has one (else the pod is unbounded).
    auto& p = rows[it->second];
    p.cpu = add(p.cpu, r.cpu);
    p.cpu_request = add(p.cpu_request, r.cpu_request);
    p.cpu_limit = add(p.cpu_limit, r.cpu_limit);
    p.memory = add(p.memory, r.memory);
    p.memory_request = add(p.memory_request, r.memory_request);
    p.memory_limit = add(p.memory_limit, r.memory_limit);
    p.oom_kills += r.oom_kills;
    p.containers++;
  }
  const bool by_memory = o.sort_by == "memory";
  if (!by_memory && o.sort_by != "cpu") throw UsageError("--sort-by wants cpu or memory");
  std::stable_sort(rows.begin(), rows.end(), [&](const UsageRow& a, const UsageRow& b) {
    const double x = (by_memory ? a.memory : a.cpu).value_or(-1), y = (by_memory ? b.memory : b.cpu).value_or(-1);
    return x > y;
  });
  if (o.output == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : rows) arr.push_back(row_json(r, pods));
    out << arr.dump(2) << '\n';
    return 0;
  }
  const bool wide = o.output == "wide";
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> header = {"NAMESPACE", "POD"};
  if (!pods) header.push_back("CONTAINER");
  for (const char* h : {"CPU(cores)", "CPU%REQ", "CPU%LIM", "MEMORY(bytes)", "MEM%REQ", "MEM%LIM"}) header.push_back(h);
  if (!pods) header.push_back("THROTTLED");
  header.push_back("OOMKILLS");
  if (wide) header.push_back(pods ? "POD_UID" : "CONTAINER_ID");
  table.push_back(header);
  for (const auto& r : rows) {
    std::vector<std::string> row = {r.namespace_.empty() ? "<unknown>" : r.namespace_,
                                    r.pod.empty() ? short_id(r.pod_uid) : r.pod};
    if (!pods) row.push_back(r.container.empty() ? short_id(r.container_id) : r.container);
    row.push_back(cores(r.cpu));
    row.push_back(percent(r.cpu, r.cpu_request));
    row.push_back(percent(r.cpu, r.cpu_limit));
    row.push_back(mebibytes(r.memory));
    row.push_back(percent(r.memory, r.memory_request));
    row.push_back(percent(r.memory, r.memory_limit));
    if (!pods) row.push_back(r.throttled ? std::to_string(std::llround(*r.throttled)) + "%" : "-");
    row.push_back(std::to_string(std::llround(r.oom_kills)));
    if (wide) row.push_back(pods ? r.pod_uid : r.container_id);
    table.push_back(std::move(row));
  }
  if (table.size() == 1) {
    out << "No containers found on this agent.\n";
    return 0;
  }
  print_table(table, out);
  return 0;
}

// `top processes`: every container's top processes by CPU, flattened and sorted.
int top_processes(const QueryOptions& o, std::ostream& out) {
  const nlohmann::json containers = get_agent_json(parse_agent_url(o.agent), "/v1/processes");
  struct Row {
    const nlohmann::json* container;
    const nlohmann::json* process;
  };
  std::vector<Row> rows;
  for (const auto& c : containers) {
    if (!o.all_namespaces && str(c, "namespace") != o.namespace_) continue;
    if (auto it = c.find("processes"); it != c.end() && it->is_array())
      for (const auto& p : *it) rows.push_back({&c, &p});
  }
  const bool by_memory = o.sort_by == "memory";
  if (!by_memory && o.sort_by != "cpu") throw UsageError("--sort-by wants cpu or memory");
  auto key = [&](const Row& r) {
    return by_memory ? num(*r.process, "rss_bytes").value_or(-1)
                     : num(*r.process, "cpu_cores").value_or(-1) * 1e9 + num(*r.process, "cpu_seconds").value_or(0);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) { return key(a) > key(b); });
  if (o.output == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json j = *r.process;
      for (const char* k : {"namespace", "pod", "pod_uid", "container", "container_id"}) j[k] = str(*r.container, k);
      arr.push_back(std::move(j));
    }
    out << arr.dump(2) << '\n';
    return 0;
  }
  if (rows.empty()) {
    out << "No processes found on this agent.\n";
    return 0;
  }
  std::vector<std::vector<std::string>> table = {
      {"NAMESPACE", "POD", "CONTAINER", "PID", "COMMAND", "CPU(cores)", "CPU-TIME", "MEMORY(bytes)", "STATE"}};
  for (const auto& r : rows) {
    const auto& c = *r.container;
    const auto& p = *r.process;
    char cpu_time[32];
    std::snprintf(cpu_time, sizeof cpu_time, "%.2fs", num(p, "cpu_seconds").value_or(0));
    std::string state = str(p, "state");
    if (state == "exited") {
      const int sig = int(num(p, "signal").value_or(0));
      state += sig ? " (signal " + std::to_string(sig) + ")" : " (" + std::to_string(int(num(p, "exit_code").value_or(0))) + ")";
    }
    if (p.value("container_main", false)) state += ", main";
    table.push_back({str(c, "namespace").empty() ? "<unknown>" : str(c, "namespace"),
                     str(c, "pod").empty() ? short_id(str(c, "pod_uid")) : str(c, "pod"),
                     str(c, "container").empty() ? short_id(str(c, "container_id")) : str(c, "container"),
                     std::to_string(p.value("pid", 0)), str(p, "comm"), cores(num(p, "cpu_cores")), cpu_time,
                     mebibytes(num(p, "rss_bytes")), state});
  }
  print_table(table, out);
  return 0;
}

std::string fmt_value(const nlohmann::json& b) {
  const auto v = num(b, "value");
  if (!v) return "-";
  char buf[32];
  if (str(b, "resource") == "memory.time_to_limit") std::snprintf(buf, sizeof buf, "%.0fs", *v);
  else std::snprintf(buf, sizeof buf, "%.0f%%", *v);
  return buf;
}

int breaches(const QueryOptions& o, std::ostream& out) {
  const AgentUrl url = parse_agent_url(o.agent);
  std::string path = "/v1/breaches";
  if (o.threshold || !o.window.empty()) {
    if (!o.threshold || o.window.empty())
      throw UsageError("--threshold and --window go together, e.g. --threshold 90 --window 5m");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", *o.threshold);
    path += "?threshold=" + std::string(buf) + "&window=" + o.window + "&resource=" + o.resource;
  }
  const nlohmann::json list = get_agent_json(url, path);
  std::vector<nlohmann::json> rows;
  for (const auto& b : list)
    if (o.all_namespaces || str(b, "namespace") == o.namespace_) rows.push_back(b);
  if (o.output == "json") {
    out << nlohmann::json(rows).dump(2) << '\n';
    return 0;
  }
  if (rows.empty()) {
    out << "No breaches.\n";
    return 0;
  }
  std::vector<std::vector<std::string>> table = {
      {"NAMESPACE", "POD", "CONTAINER", "RULE", "VALUE", "PEAK", "FOR"}};
  for (const auto& b : rows) {
    nlohmann::json peak = b;
    peak["value"] = b.value("peak", nlohmann::json());
    const double d = num(b, "duration_seconds").value_or(0);
    char dur[32];
    if (d >= 3600) std::snprintf(dur, sizeof dur, "%.0fh%02.0fm", std::floor(d / 3600), std::fmod(d, 3600) / 60);
    else if (d >= 60) std::snprintf(dur, sizeof dur, "%.0fm%02.0fs", std::floor(d / 60), std::fmod(d, 60));
    else std::snprintf(dur, sizeof dur, "%.0fs", d);
    table.push_back({str(b, "namespace").empty() ? "<unknown>" : str(b, "namespace"),
                     str(b, "pod").empty() ? short_id(str(b, "pod_uid")) : str(b, "pod"),
                     str(b, "container").empty() ? short_id(str(b, "container_id")) : str(b, "container"),
                     str(b, "rule"), fmt_value(b), fmt_value(peak), dur});
  }
  print_table(table, out);
  return 0;
}

constexpr const char* kTopUsage = R"(Usage: podgauge top pods|containers|processes --agent URL [flags]

Usage of every pod or container on one node against its requests and limits, or the top
processes of every container (running, and recently exited with their exit codes), sorted.

Flags:
      --agent URL          the agent to ask, e.g. http://10.0.0.5:9742
  -n, --namespace NS       only this namespace (default: all)
      --sort-by cpu|memory (default cpu)
  -o, --output FORMAT      table (default), wide, json
)";

constexpr const char* kBreachesUsage = R"(Usage: podgauge breaches --agent URL [flags]

Containers over their limits: the agent's active breaches (its rules, see podgauge agent
--breach-rule), or, with --threshold and --window, every container whose usage stayed at or
above THRESHOLD % of its limit for the whole window.

Flags:
      --agent URL          the agent to ask, e.g. http://10.0.0.5:9742
      --threshold PCT      e.g. 90
      --window DURATION    e.g. 5m
      --resource R         memory (default) or cpu, with --threshold
  -n, --namespace NS       only this namespace (default: all)
  -o, --output FORMAT      table (default) or json
)";

template <typename Fn>
int run_query(const char* name, const char* usage, int argc, char** argv, std::ostream& out, std::ostream& err,
              Fn&& fn) {
  try {
    const QueryOptions o = parse_query_args(argc, argv);
    if (o.help) {
      out << usage;
      return 0;
    }
    return fn(o);
  } catch (const UsageError& e) {
    err << "podgauge " << name << ": " << e.what() << "\n" << usage;
    return 2;
  } catch (const AgentUrlError& e) {
    err << "podgauge " << name << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    err << "podgauge " << name << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int top_main(int argc, char** argv, std::ostream& out, std::ostream& err) {
  return run_query("top", kTopUsage, argc, argv, out, err, [&](const QueryOptions& o) {
    const std::string what = o.positional.size() == 1 ? o.positional[0] : "";
    if (what == "processes" || what == "process" || what == "procs") return top_processes(o, out);
    if (what != "pods" && what != "pod" && what != "po" && what != "containers" && what != "container")
      throw UsageError("say what to show: podgauge top pods, containers or processes");
    return top(o, out);
  });
}

int breaches_main(int argc, char** argv, std::ostream& out, std::ostream& err) {
  return run_query("breaches", kBreachesUsage, argc, argv, out, err, [&](const QueryOptions& o) {
    if (!o.positional.empty()) throw UsageError("unexpected argument \"" + o.positional[0] + "\"");
    return breaches(o, out);
  });
}

}  // namespace podgauge::cli
