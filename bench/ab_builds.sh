#!/usr/bin/env bash
# Two builds of Steward at once, on one route: BEFORE (another checkout, e.g. a git worktree)
# on port 8111 and this checkout on 8112, each on its own KV file. wrk loads them in turn, pair
# after pair, and each run prints req/s and the server's CPU per request (every thread, from
# /proc), so a slow spell of the machine hits both sides of a pair. Needs wrk and bc; Linux.
#
#   git worktree add /tmp/before 509b7bb
#   REQUEST_LOG_SAMPLE_RATE=1 bench/ab_builds.sh /tmp/before /health/live
#
# Settings: ROUNDS (pairs, default 6), SECONDS_PER_RUN (default 4), and any Steward variable.
set -euo pipefail
before=$(cd "${1:?usage: bench/ab_builds.sh BEFORE_DIR [PATH]}" && pwd)
after=$(cd "$(dirname "$0")/.." && pwd)
path=${2:-/health/live}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

start() { # dir port
  (cd "$1" && STEWARD_RATE_LIMITS=off HOST=127.0.0.1 PORT=$2 STEWARD_KV_PATH="$work/$2.kv" \
    NO_COLOR=1 RUST_BACKTRACE=0 exec deno run -A --unstable-kv main.ts >"$work/$2.log" 2>&1) &
  pids+=($!)
}
start "$before" 8111
start "$after" 8112
for port in 8111 8112; do
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.5; done
done
pid_of() { ss -ltnp | grep ":$1 " | sed 's/.*pid=\([0-9]*\).*/\1/' | head -1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

run() { # label port
  local pid c0 c1 out n rps
  pid=$(pid_of "$2")
  c0=$(cpu_ticks "$pid")
  out=$(wrk -t2 -c50 -d"${SECONDS_PER_RUN:-4}s" "http://127.0.0.1:$2$path")
  c1=$(cpu_ticks "$pid")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  printf '%-7s %10s req/s %8.2f µs CPU/request\n' "$1" "$rps" \
    "$(echo "($c1 - $c0) * 1000000 / $hz / $n" | bc -l)"
}
for port in 8111 8112; do wrk -t2 -c50 -d2s "http://127.0.0.1:$port$path" >/dev/null; done
for _ in $(seq 1 "${ROUNDS:-6}"); do
  run before 8111
  run after 8112
done
