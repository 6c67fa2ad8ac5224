#!/usr/bin/env bash
# bench/agent_overhead.sh — how much does the podgauge agent cost a node?
#
#   1. BPF cost per invocation  (agent --bpf-stats, context-switch-heavy load,
#                                run_time/run_count deltas from /metrics)
#   2. Throughput overhead      (perf bench sched pipe, alternating agent off/on)
#   3. Agent idle cost          (CPU % of one core and RSS, agent idle with --interval 1s)
#
# Needs root (the agent loads BPF programs). Builds nothing: it runs an existing binary.
# Every load is bounded (fixed loop counts plus a `timeout`); the agent is stopped by pid on exit.
#
# Tunables (environment):
#   PODGAUGE_BIN        agent binary              (default: <repo>/build/userspace/podgauge)
#   BPF_REPS            section 1 repetitions     (default 5)
#   BPF_PIPE_LOOPS      section 1 pipe loops      (default 200000)
#   BPF_HACKBENCH_LOOPS section 1 hackbench loops (default 500; 0 skips hackbench)
#   HACKBENCH_GROUPS    hackbench -g              (default 2)
#   PAIRS               section 2 off/on pairs    (default 7, minimum 5)
#   PIPE_LOOPS          section 2 pipe loops      (default 400000)
#   PIPE_CPUS           section 2: pin perf bench with taskset -c (default: unpinned)
#   AGENT_SETTLE        section 2: seconds between agent start and its 'on' run (default 10):
#                       the agent's start-up (BTF, program loads, first cgroup and /proc walks)
#                       is not the steady overhead being measured
#   IDLE_SECONDS        section 3 measurement     (default 30)
#   IDLE_WARMUP         section 3 settle time     (default 3)
#   LOAD_TIMEOUT        hard limit per load run, seconds (default 60)
#   FOREIGN_MAX_PCT     section 2: a pair counts as disturbed when other processes used more
#                       than this % of all CPUs during one of its runs (default 5)
#   SECTIONS            which sections to run     (default "1 2 3")
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PODGAUGE_BIN=${PODGAUGE_BIN:-$REPO/build/userspace/podgauge}
BPF_REPS=${BPF_REPS:-5}
BPF_PIPE_LOOPS=${BPF_PIPE_LOOPS:-200000}
BPF_HACKBENCH_LOOPS=${BPF_HACKBENCH_LOOPS:-500}
HACKBENCH_GROUPS=${HACKBENCH_GROUPS:-2}
PAIRS=${PAIRS:-7}
PIPE_LOOPS=${PIPE_LOOPS:-400000}
PIPE_CPUS=${PIPE_CPUS:-}
AGENT_SETTLE=${AGENT_SETTLE:-10}
IDLE_SECONDS=${IDLE_SECONDS:-30}
IDLE_WARMUP=${IDLE_WARMUP:-3}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-60}
FOREIGN_MAX_PCT=${FOREIGN_MAX_PCT:-5}
SECTIONS=${SECTIONS:-"1 2 3"}

TARGET_NS=100      # sched_switch ns per invocation
TARGET_PCT=2       # throughput overhead %

die() { echo "agent_overhead: $*" >&2; exit 1; }

# ---------------------------------------------------------------- preflight
[[ $EUID -eq 0 ]] || die "needs root (the agent loads BPF programs); run: sudo $0"
if [[ ! -x $PODGAUGE_BIN ]]; then
  die "no agent binary at $PODGAUGE_BIN
  build it:  cmake --build $REPO/build --target podgauge -j2
  (or point PODGAUGE_BIN at one)"
fi
for tool in perf curl timeout awk; do
  command -v "$tool" >/dev/null || die "needs '$tool' in PATH"
done
HAVE_HACKBENCH=1
command -v hackbench >/dev/null || HAVE_HACKBENCH=0
(( PAIRS >= 5 )) || die "PAIRS must be >= 5 (got $PAIRS)"
(( BPF_REPS >= 1 )) || die "BPF_REPS must be >= 1"
PIN=()
if [[ -n $PIPE_CPUS ]]; then
  command -v taskset >/dev/null || die "PIPE_CPUS set but no taskset"
  PIN=(taskset -c "$PIPE_CPUS")
fi

NCPU=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/podgauge-bench.XXXXXX)
AGENT_PID=""
AGENT_PORT=""

stop_agent() {
  [[ -n $AGENT_PID ]] || return 0
  local pid=$AGENT_PID
  AGENT_PID=""
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "agent_overhead: agent pid $pid did not stop on SIGTERM, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_agent
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_agent ARGS... : starts the agent on a kernel-chosen port, waits until it is listening.
AGENT_CMD=""
start_agent() {
  local out=$WORK/agent.out err=$WORK/agent.err
  : >"$out"; : >"$err"
  local cmd=("$PODGAUGE_BIN" agent --listen 127.0.0.1:0 --no-kube "$@")
  AGENT_CMD="${cmd[*]}"
  "${cmd[@]}" >"$out" 2>"$err" &
  AGENT_PID=$!
  local line=""
  for _ in $(seq 150); do
    line=$(grep -m1 'listening on' "$out" 2>/dev/null || true)
    [[ -n $line ]] && break
    kill -0 "$AGENT_PID" 2>/dev/null || { cat "$err" >&2; AGENT_PID=""; die "agent exited during startup"; }
    sleep 0.1
  done
  [[ -n $line ]] || { cat "$err" >&2; die "agent did not report 'listening on' within 15 s"; }
  AGENT_PORT=$(sed -E 's/.*listening on [0-9.]+:([0-9]+).*/\1/' <<<"$line")
  [[ $AGENT_PORT =~ ^[0-9]+$ ]] || die "cannot parse port from: $line"
  if grep -q 'cannot enable BPF' "$err"; then cat "$err" >&2; die "agent could not enable BPF stats"; fi
}

scrape() { curl -sf --max-time 5 "http://127.0.0.1:$AGENT_PORT/metrics"; }

# metric_value FILE NAME [LABELS] : value of the first sample NAME{LABELS} (LABELS exact, may be empty)
metric_value() {
  local file=$1 name=$2 labels=${3:-}
  local series=$name
  [[ -n $labels ]] && series="$name{$labels}"
  awk -v s="$series" '$1 == s { print $2; found = 1; exit } END { if (!found) print "NA" }' "$file"
}

# median / min / max of numbers on stdin
stats() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "NA NA NA"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%s %s %s\n", m, v[1], v[NR] }'
}

now() { date +%s.%N; }
ctxt() { awk '$1 == "ctxt" { print $2 }' /proc/stat; }
hr() { printf '%s\n' "------------------------------------------------------------------------------"; }

# ---------------------------------------------------------------- context
echo "podgauge agent overhead benchmark"
echo "  binary:   $PODGAUGE_BIN ($("$PODGAUGE_BIN" version 2>/dev/null | head -1 || echo '?'))"
echo "  kernel:   $(uname -r), $(nproc) CPUs"
BPF_STATS_SYSCTL=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo '?')
echo "  kernel.bpf_stats_enabled = $BPF_STATS_SYSCTL (not modified by this script)"
read -r LA1 _ </proc/loadavg
echo "  load average (1 min) at start: $LA1"
if awk -v l="$LA1" 'BEGIN { exit !(l > 0.5) }'; then
  echo "  WARNING: the machine is not idle; figures will be noisier"
fi
SYSCALL_NS=$(perf bench syscall basic -l 1000000 2>/dev/null | awk '/usecs\/op/ { printf "%.0f", $1 * 1000 }' || true)
echo "  calibration: getppid() syscall ${SYSCALL_NS:-?} ns (perf bench syscall basic -l 1000000; machine speed reference)"
if [[ $BPF_STATS_SYSCTL == 1 ]]; then
  echo "  WARNING: kernel.bpf_stats_enabled=1 system-wide, so section 2's 'agent on' runs also pay for stats"
fi

# ================================================================ section 1
section1() {
  hr
  echo "1. BPF cost per invocation (agent with --bpf-stats; $BPF_REPS reps per load)"
  start_agent --bpf-stats --interval 1s
  echo "   agent:   $AGENT_CMD   (pid $AGENT_PID)"
  sleep 1

  local loads=(pipe)
  local -A load_cmd
  load_cmd[pipe]="timeout $LOAD_TIMEOUT perf bench sched pipe -l $BPF_PIPE_LOOPS"
  if (( BPF_HACKBENCH_LOOPS > 0 )); then
    if (( HAVE_HACKBENCH )); then
      loads+=(hackbench)
      load_cmd[hackbench]="timeout $LOAD_TIMEOUT hackbench -g $HACKBENCH_GROUPS -l $BPF_HACKBENCH_LOOPS"
    else
      echo "   (hackbench not installed: skipping that load)"
    fi
  fi

  local load rep
  for load in "${loads[@]}"; do
    echo "   load:    ${load_cmd[$load]}"
  done
  echo "   metrics: podgauge_agent_bpf_run_time_seconds_total / podgauge_agent_bpf_run_count_total,"
  echo "            scraped from http://127.0.0.1:$AGENT_PORT/metrics right before and after each load run;"
  echo "            cross-check: the 'ctxt' line of /proc/stat (kernel context-switch count) around the load"
  echo

  local results=$WORK/s1.tsv   # load prog rep count ns_per_inv secs
  : >"$results"; : >"$WORK/ctxt"
  for load in "${loads[@]}"; do
    for rep in $(seq "$BPF_REPS"); do
      scrape >"$WORK/m0" || die "scrape failed"
      local t0 t1 x0 x1
      x0=$(ctxt); t0=$(now)
      # shellcheck disable=SC2086
      ${load_cmd[$load]} >"$WORK/load.out" 2>&1 || die "load failed: ${load_cmd[$load]} ($(tail -2 "$WORK/load.out"))"
      t1=$(now); x1=$(ctxt)
      scrape >"$WORK/m1" || die "scrape failed"
      echo "$load $rep $((x1 - x0))" >>"$WORK/ctxt"
      # every program in the count family, from the 'after' scrape
      local series
      while read -r series; do
        local labels=${series#*\{}; labels=${labels%\}}
        local prog
        prog=$(sed -E 's/family="([^"]*)",program="([^"]*)".*/\1\/\2/' <<<"$labels")
        local c0 c1 r0 r1
        c0=$(metric_value "$WORK/m0" podgauge_agent_bpf_run_count_total "$labels")
        c1=$(metric_value "$WORK/m1" podgauge_agent_bpf_run_count_total "$labels")
        r0=$(metric_value "$WORK/m0" podgauge_agent_bpf_run_time_seconds_total "$labels")
        r1=$(metric_value "$WORK/m1" podgauge_agent_bpf_run_time_seconds_total "$labels")
        awk -v l="$load" -v p="$prog" -v rep="$rep" -v c0="$c0" -v c1="$c1" -v r0="$r0" -v r1="$r1" \
            -v t0="$t0" -v t1="$t1" 'BEGIN {
          dc = c1 - c0; dr = (r1 - r0) * 1e9
          printf "%s\t%s\t%d\t%d\t%s\t%.3f\t%.0f\n", l, p, rep, dc, (dc > 0 ? sprintf("%.1f", dr / dc) : "NA"), t1 - t0, dr
        }' >>"$results"
      done < <(grep -o '^podgauge_agent_bpf_run_count_total{[^}]*}' "$WORK/m1")
      awk -F'\t' -v l="$load" -v rep="$rep" '$1 == l && $3 == rep {
        line = line sprintf("  %s: %d inv%s", $2, $4, ($5 == "NA" ? "" : ", " $5 " ns/inv")); secs = $6 }
        END { printf "   %-9s rep %d (%5.2fs):%s\n", l, rep, secs, line }' "$results"
      echo "                               kernel context switches (/proc/stat ctxt) during the load: $((x1 - x0))"
    done
  done

  echo
  echo "   summary (ns per invocation = delta run_time / delta run_count; median [min..max] over reps):"
  local any_zero=0
  for load in "${loads[@]}"; do
    local prog
    while read -r prog; do
      local total_count
      total_count=$(awk -F'\t' -v l="$load" -v p="$prog" '$1 == l && $2 == p { s += $4 } END { print s + 0 }' "$results")
      if (( total_count == 0 )); then
        printf '   %-9s %-26s not invoked by this load (0 runs)\n' "$load" "$prog"
        [[ $prog == cpu/sched_switch ]] && any_zero=1
        continue
      fi
      local ns_med ns_min ns_max cnt_med cnt_min cnt_max
      read -r ns_med ns_min ns_max < <(awk -F'\t' -v l="$load" -v p="$prog" '$1 == l && $2 == p && $5 != "NA" { print $5 }' "$results" | stats)
      read -r cnt_med cnt_min cnt_max < <(awk -F'\t' -v l="$load" -v p="$prog" '$1 == l && $2 == p { print $4 }' "$results" | stats)
      local rate
      rate=$(awk -F'\t' -v l="$load" -v p="$prog" '$1 == l && $2 == p { c += $4; s += $6 } END { printf "%.0f", (s > 0 ? c / s : 0) }' "$results")
      local verdict=""
      if [[ $prog == cpu/sched_switch ]]; then
        if awk -v v="$ns_med" -v t="$TARGET_NS" 'BEGIN { exit !(v < t) }'; then
          verdict="  target < ${TARGET_NS} ns: PASS"
        else
          verdict="  target < ${TARGET_NS} ns: FAIL"
        fi
      fi
      printf '   %-9s %-26s %7.1f ns/inv [%.1f..%.1f]   invocations/rep %.0f [%.0f..%.0f] (~%s/s)%s\n' \
        "$load" "$prog" "$ns_med" "$ns_min" "$ns_max" "$cnt_med" "$cnt_min" "$cnt_max" "$rate" "$verdict"
    done < <(awk -F'\t' -v l="$load" '$1 == l && !seen[$2]++ { print $2 }' "$results")
  done
  for load in "${loads[@]}"; do
    awk -v l="$load" -F'\t' '$1 == l && $2 == "cpu/sched_switch" { b += $4 } END { print b + 0 }' "$results" >"$WORK/b"
    awk -v l="$load" -v b="$(cat "$WORK/b")" '$1 == l { k += $3 } END {
      if (k > 0) printf "   %-9s cross-check: sched_switch runs / kernel context switches = %d / %d = %.4f (~1 expected;\n             the BPF window also spans the two scrapes)\n", l, b, k, b / k }' "$WORK/ctxt"
  done
  if (( any_zero )); then
    echo "   ERROR: sched_switch run_count did not move during a context-switch load:"
    echo "          BPF stats are probably not enabled (agent stderr follows)"
    sed 's/^/          /' "$WORK/agent.err"
  fi

  stop_agent
  section1_floor
}

# The same loads with only an empty sched_switch program attached (bench/bpf_floor): what
# bpf_stats reports for a program that does nothing. On a VM whose clock reads are slow that is
# most of the figure above; the program's own work is the difference.
section1_floor() {
  local floor_bin=${BPF_FLOOR_BIN:-$(dirname "$PODGAUGE_BIN")/../bench/bpf_floor}
  if [[ ! -x $floor_bin ]]; then
    echo "   floor:   no bench/bpf_floor at $floor_bin (build it: cmake --build build --target bpf_floor)"
    return
  fi
  echo
  echo "   floor: an empty tp_btf sched_switch program under the same loads, agent stopped ($floor_bin)"
  local load rep
  for load in "${loads[@]}"; do
    : >"$WORK/floor.$load"
    for rep in $(seq "$BPF_REPS"); do
      # shellcheck disable=SC2086
      "$floor_bin" -- ${load_cmd[$load]} 2>&1 | awk '/ns\/call/ { print $(NF-1) + 0 }' >>"$WORK/floor.$load" ||
        die "bpf_floor failed under: ${load_cmd[$load]}"
    done
    local f_med f_min f_max s_med
    read -r f_med f_min f_max < <(stats <"$WORK/floor.$load")
    s_med=$(awk -F'\t' -v l="$load" '$1 == l && $2 == "cpu/sched_switch" && $5 != "NA" { print $5 }' "$results" | stats | cut -d' ' -f1)
    printf '   %-9s empty program %7.1f ns/inv [%.1f..%.1f]; cpu/sched_switch above it: %.1f ns/inv (median %s - %s)\n' \
      "$load" "$f_med" "$f_min" "$f_max" "$(awk -v a="$s_med" -v b="$f_med" 'BEGIN { print a - b }')" "$s_med" "$f_med"
  done
}

# ================================================================ section 2
# busy_ticks : non-idle CPU time of the whole machine so far, in USER_HZ ticks (/proc/stat "cpu" line)
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# pipe_run : one perf bench sched pipe run. Prints
#   "usecs_per_op ops_per_sec cpu_usecs_per_op foreign_pct"
# cpu_usecs_per_op: the benchmark's own user+sys CPU time per op (less sensitive to other load);
# foreign_pct: CPU used by everything else on the machine during the run, % of all CPUs.
# pipe_run [WRAPPER...] : the run under WRAPPER (e.g. bench/bpf_floor --), if given.
pipe_run() {
  local out=$WORK/pipe.out tf=$WORK/pipe.time b0 b1 t0 t1
  b0=$(busy_ticks); t0=$(now)
  { TIMEFORMAT='%3U %3S'; time "$@" "${PIN[@]}" timeout "$LOAD_TIMEOUT" perf bench sched pipe -l "$PIPE_LOOPS" >"$out" 2>&1; } 2>"$tf" ||
    die "perf bench sched pipe failed: $(tail -3 "$out")"
  t1=$(now); b1=$(busy_ticks)
  awk -v tf="$tf" -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" -v n="$NCPU" -v loops="$PIPE_LOOPS" '
    /usecs\/op/ { u = $1 } /ops\/sec/ { o = $1 }
    END {
      if (u == "" || o == "") exit 1
      getline line < tf; split(line, c, " "); cpu = c[1] + c[2]
      foreign = ((b1 - b0) / hz - cpu) / ((t1 - t0) * n) * 100
      if (foreign < 0) foreign = 0
      printf "%s %s %.4f %.1f\n", u, o, cpu / loops * 1e6, foreign }' "$out" ||
    die "cannot parse perf bench output: $(cat "$out")"
}

section2() {
  hr
  echo "2. Throughput overhead: perf bench sched pipe, agent off/on alternating, $PAIRS pairs"
  local bench_cmd="${PIN[*]:+${PIN[*]} }timeout $LOAD_TIMEOUT perf bench sched pipe -l $PIPE_LOOPS"
  echo "   bench:   $bench_cmd"
  echo "   agent:   $PODGAUGE_BIN agent --listen 127.0.0.1:0 --no-kube --interval 1s   (no --bpf-stats;"
  echo "            started before and stopped after each 'on' run, ${AGENT_SETTLE} s settle after start)"
  echo "   order:   warm-up (discarded), then off,on,off,on,..."
  echo "   columns: usecs/op and ops/s as printed by perf bench (wall clock); cpu-us/op = the benchmark's"
  echo "            own user+sys CPU per op; other = CPU used by the rest of the machine during the run"
  echo "            (% of all $NCPU CPUs; a pair is marked '*' when either run has other > ${FOREIGN_MAX_PCT}%)"
  # A third run per pair with only an empty sched_switch program attached: what any program on
  # that tracepoint costs on this machine (dispatch), apart from what podgauge's own work adds.
  local floor_bin=${BPF_FLOOR_BIN:-$(dirname "$PODGAUGE_BIN")/../bench/bpf_floor}
  [[ -x $floor_bin ]] && echo "   floor:   each pair also runs the bench under $floor_bin (an empty sched_switch program)"
  pipe_run >/dev/null
  local i off on empty
  : >"$WORK/s2.tsv"; : >"$WORK/s2.empty"
  for i in $(seq "$PAIRS"); do
    off=$(pipe_run)
    if [[ -x $floor_bin ]]; then
      empty=$(pipe_run "$floor_bin" --)
      echo "$i ${empty%% *} ${off%% *}" >>"$WORK/s2.empty"
    fi
    start_agent --interval 1s
    sleep "$AGENT_SETTLE"
    on=$(pipe_run)
    stop_agent
    local ou oo oc of nu no nc nf
    read -r ou oo oc of <<<"$off"
    read -r nu no nc nf <<<"$on"
    local dirty
    dirty=$(awk -v a="$of" -v b="$nf" -v t="$FOREIGN_MAX_PCT" 'BEGIN { print (a > t || b > t) ? 1 : 0 }')
    printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$ou" "$oo" "$oc" "$nu" "$no" "$nc" "$dirty" >>"$WORK/s2.tsv"
    awk -v i="$i" -v ou="$ou" -v oo="$oo" -v oc="$oc" -v of="$of" -v nu="$nu" -v no="$no" -v nc="$nc" -v nf="$nf" -v d="$dirty" 'BEGIN {
      printf "   pair %d%s off %7.3f usecs/op %7d ops/s cpu %6.3f us/op other %4.1f%% | on %7.3f usecs/op %7d ops/s cpu %6.3f us/op other %4.1f%% | on/off %.3f\n",
        i, (d ? "*" : ":"), ou, oo, oc, of, nu, no, nc, nf, nu / ou }'
  done
  echo
  local clean note=""
  clean=$(awk -F'\t' '$8 == 0' "$WORK/s2.tsv" | wc -l)
  (( clean == PAIRS )) || note=" (UNRELIABLE: other load in $((PAIRS - clean)) pairs)"
  s2_summary "all $PAIRS pairs" 0 "$note"
  if (( clean < PAIRS )); then
    echo
    if (( clean >= 3 )); then
      s2_summary "the $clean pairs without other load (*-pairs dropped)" 1 ""
    else
      echo "   only $clean of $PAIRS pairs ran without other load on the machine: the figures above are"
      echo "   NOT reliable; rerun on an otherwise idle machine (or with more PAIRS)"
    fi
  fi
  if [[ -s $WORK/s2.empty ]]; then
    local e_med on_all
    read -r e_med _ _ < <(cut -d' ' -f2 "$WORK/s2.empty" | stats)
    read -r on_all _ _ < <(cut -f5 "$WORK/s2.tsv" | stats)
    awk -v e="$e_med" -v on="$on_all" -v off="$(cut -f2 "$WORK/s2.tsv" | stats | cut -d' ' -f1)" \
        -v pr="$(awk '{ print $2 / $3 }' "$WORK/s2.empty" | stats | cut -d' ' -f1)" 'BEGIN {
      printf "   empty sched_switch program (dispatch floor): median %.3f usecs/op, %+.2f%% over off (per-pair median %+.2f%%)\n", e, (e / off - 1) * 100, (pr - 1) * 100
      printf "   agent over that floor (median on / median empty - 1): %+.2f%%\n", (on / e - 1) * 100 }'
  fi
  echo "   (usecs/op: lower is better; overhead > 0 means slower with the agent)"
}

# s2_summary LABEL CLEAN_ONLY VERDICT_NOTE
s2_summary() {
  local label=$1 clean_only=$2 note=$3 rows=$WORK/s2.sel
  if (( clean_only )); then awk -F'\t' '$8 == 0' "$WORK/s2.tsv" >"$rows"; else cp "$WORK/s2.tsv" "$rows"; fi
  local off_med off_min off_max on_med on_min on_max ofs_med onops_med oc_med nc_med pr_med pr_min pr_max
  read -r off_med off_min off_max < <(cut -f2 "$rows" | stats)
  read -r on_med on_min on_max < <(cut -f5 "$rows" | stats)
  read -r ofs_med _ _ < <(cut -f3 "$rows" | stats)
  read -r onops_med _ _ < <(cut -f6 "$rows" | stats)
  read -r oc_med _ _ < <(cut -f4 "$rows" | stats)
  read -r nc_med _ _ < <(cut -f7 "$rows" | stats)
  read -r pr_med pr_min pr_max < <(awk -F'\t' '{ print $5 / $2 }' "$rows" | stats)
  echo "   summary over $label:"
  awk -v a="$off_med" -v b="$off_min" -v c="$off_max" -v o="$ofs_med" -v cp="$oc_med" 'BEGIN {
    printf "   agent off: median %.3f usecs/op [%.3f..%.3f], %.0f ops/s, cpu %.3f us/op; spread %.1f%% of median\n", a, b, c, o, cp, (c - b) / a * 100 }'
  awk -v a="$on_med" -v b="$on_min" -v c="$on_max" -v o="$onops_med" -v cp="$nc_med" 'BEGIN {
    printf "   agent on:  median %.3f usecs/op [%.3f..%.3f], %.0f ops/s, cpu %.3f us/op; spread %.1f%% of median\n", a, b, c, o, cp, (c - b) / a * 100 }'
  awk -v off="$off_med" -v on="$on_med" -v pm="$pr_med" -v p0="$pr_min" -v p1="$pr_max" -v oc="$oc_med" -v nc="$nc_med" -v t="$TARGET_PCT" -v note="$note" 'BEGIN {
    ov = (on / off - 1) * 100; pov = (pm - 1) * 100
    printf "   overhead, usecs/op (median on / median off - 1):    %+.2f%%  (ratio %.4f)   target < %g%%: %s%s\n", ov, on / off, t, (ov < t ? "PASS" : "FAIL"), note
    printf "   overhead, usecs/op (median of per-pair on/off - 1): %+.2f%%  [pairs: %+.2f%%..%+.2f%%]\n", pov, (p0 - 1) * 100, (p1 - 1) * 100
    printf "   overhead, benchmark CPU per op (median on / off - 1): %+.2f%%\n", (nc / oc - 1) * 100 }'
}

# ================================================================ section 3
section3() {
  hr
  echo "3. Agent idle cost: agent running ${IDLE_SECONDS}s with no extra load (after ${IDLE_WARMUP}s settle)"
  start_agent --interval 1s
  echo "   agent:   $AGENT_CMD   (pid $AGENT_PID)"
  echo "   CPU:     delta process_cpu_seconds_total (/metrics), utime+stime (/proc/$AGENT_PID/stat) and"
  echo "            on-CPU ns (/proc/$AGENT_PID/task/*/schedstat) over wall time"
  echo "   memory:  process_resident_memory_bytes (/metrics), VmRSS/VmHWM (/proc/$AGENT_PID/status)"
  sleep "$IDLE_WARMUP"
  local hz=$CLK_TCK
  proc_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$AGENT_PID/stat"; }
  # on-CPU ns of the threads alive now (ns resolution; misses threads that exit in between)
  sched_ns() { cat /proc/"$AGENT_PID"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
  scrape >"$WORK/i0" || die "scrape failed"
  local p0 t0 t1 p1 s0 s1
  p0=$(proc_ticks); s0=$(sched_ns); t0=$(now)
  sleep "$IDLE_SECONDS"
  t1=$(now); s1=$(sched_ns); p1=$(proc_ticks)
  scrape >"$WORK/i1" || die "scrape failed"
  local c0 c1 rss vmrss vmhwm threads
  c0=$(metric_value "$WORK/i0" process_cpu_seconds_total)
  c1=$(metric_value "$WORK/i1" process_cpu_seconds_total)
  rss=$(metric_value "$WORK/i1" process_resident_memory_bytes)
  vmrss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT_PID/status")
  vmhwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$AGENT_PID/status")
  threads=$(awk '/^Threads:/ { print $2 }' "/proc/$AGENT_PID/status")
  echo
  awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v p0="$p0" -v p1="$p1" -v hz="$hz" -v s0="$s0" -v s1="$s1" 'BEGIN {
    w = t1 - t0
    printf "   wall time:                      %.2f s\n", w
    printf "   CPU via process_cpu_seconds:    %.3f s  -> %.3f%% of one core\n", c1 - c0, (c1 - c0) / w * 100
    printf "   CPU via /proc/PID/stat:         %.3f s  -> %.3f%% of one core (no scrape inside this window)\n", (p1 - p0) / hz, (p1 - p0) / hz / w * 100
    printf "   CPU via /proc/PID/task/*/schedstat: %.4f s -> %.3f%% of one core (ns resolution, no scrape inside)\n", (s1 - s0) / 1e9, (s1 - s0) / 1e9 / w * 100 }'
  awk -v r="$rss" -v v="$vmrss" -v h="$vmhwm" -v th="$threads" 'BEGIN {
    printf "   RSS via process_resident_memory_bytes: %d bytes (%.1f MiB)\n", r, r / 1048576
    printf "   RSS via /proc/PID/status VmRSS:        %d kB (%.1f MiB); VmHWM (peak) %d kB (%.1f MiB); %d threads\n", v, v / 1024, h, h / 1024, th }'
  stop_agent
}

T_START=$(now)
for s in $SECTIONS; do
  case $s in
    1) section1 ;;
    2) section2 ;;
    3) section3 ;;
    *) die "unknown section '$s' (SECTIONS takes 1 2 3)" ;;
  esac
done
hr
awk -v a="$T_START" -v b="$(now)" 'BEGIN { printf "done in %.0f s\n", b - a }'
echo "kernel.bpf_stats_enabled now = $(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo '?') (was $BPF_STATS_SYSCTL)"
