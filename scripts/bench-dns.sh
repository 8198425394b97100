#!/usr/bin/env bash
# Authoritative DNS: dv-agent versus NSD and dnsmasq serving the same zones
# (about 10,000 configured names), same query mix, same load tool (dnsperf),
# same namespace, same run. Prints each server's queries/s, lost queries,
# response codes and CPU time per query, and the agent's ratios to the others.
#
#   scripts/bench-dns.sh                      # 10 s per server
#   RUN=30 DV_AGENT=target/release/dv-agent scripts/bench-dns.sh
#   HOSTS=7000 SERVICES=3000 ALIASES=100 QUERIES=100000 SEED=53 KEEP=1 scripts/bench-dns.sh
#
# One dnsperf process saturates near 110,000-120,000 queries/s on the
# project's machines, which is also where NSD and Knot sit, so queries/s alone
# often ties; the CPU time per query is what separates the servers.
#
# The zones come from scripts/bench-dns-zone.py: HOSTS hosts (A, plus their
# <host>-bench interface identities), SERVICES services (CNAME to a host) and
# ALIASES site aliases (<service>.bench -> <service>.mgmt -> host: a chain
# across zones). NSD serves the agent's own AXFR of every zone; dnsmasq serves
# the agent's dnsmasq export (GET /v1/dns/export/dnsmasq), the configuration a
# site would really run. Needs root (network namespace), dnsperf, nsd,
# dnsmasq, dig, curl and python3.
set -euo pipefail

cd "$(dirname "$0")/.."
AGENT_BIN="${DV_AGENT:-target/release/dv-agent}"
RUN="${RUN:-${SECONDS_PER_RUN:-10}}"
CLIENTS="${CLIENTS:-4}"
START_TIMEOUT="${START_TIMEOUT:-60}"   # seconds; the agent loads every name at start
[ -x "$AGENT_BIN" ] || cargo build --release -p dv-agent
for tool in dnsperf nsd dnsmasq dig curl python3; do
  command -v "$tool" >/dev/null || { echo "bench-dns: $tool missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

AGENT=10.53.0.1 NSD=10.53.0.2 DNSMASQ=10.53.0.3
MGMT=mgmt.dataverket.test SITE=bench.dataverket.test
NS="dvbench-dns-$$"
WORK="$(mktemp -d /tmp/dvbench-dns.XXXXXX)"
PIDS=()
cleanup() {
  # Every server runs inside the namespace, so its pid list is complete even
  # if the script died between starting a server and recording its pid.
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  # Reaping them here keeps bash from reporting each as "Killed".
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
for ip in $AGENT $NSD $DNSMASQ; do ip -n "$NS" addr add "$ip/32" dev lo; done
# Servers are started with a plain `ip netns exec` (which execs the server), not
# through this function, so that $! is the server's own pid for CPU accounting.
inns() { ip netns exec "$NS" "$@"; }
now() { date +%s.%N; }

# --- inputs -------------------------------------------------------------------
python3 scripts/bench-dns-zone.py "$WORK" --hosts "${HOSTS:-7000}" --services "${SERVICES:-3000}" \
  --aliases "${ALIASES:-100}" --queries "${QUERIES:-100000}" --seed "${SEED:-53}"
# check-config prints every name in its summary; keep only the verdict.
"$AGENT_BIN" check-config "$WORK/agent.toml" > "$WORK/check-config.txt" 2>&1 \
  || { cat "$WORK/check-config.txt" >&2; exit 1; }
echo "config: $(grep -c '^\[\[dns.hosts\]\]' "$WORK/agent.toml") hosts," \
  "$(grep -c '^\[\[dns.services\]\]' "$WORK/agent.toml") services, ${ALIASES:-100} site aliases: $(head -1 "$WORK/check-config.txt")"

# --- dv-agent -----------------------------------------------------------------
T0=$(now)
ip netns exec "$NS" "$AGENT_BIN" serve --config "$WORK/agent.toml" --log-format json > /dev/null 2> "$WORK/agent.log" &
AGENT_PID=$!; PIDS+=($!)
# Bounded wait for the first answer: start-up time with a large zone is one of
# the things this bench is for, so it is measured rather than assumed.
answers() { inns dig @"$1" +short +time=1 +tries=1 "$2" A 2>/dev/null | grep -qx "$3"; }
deadline=$(( $(date +%s) + START_TIMEOUT ))
until answers $AGENT "provisioner-01.$MGMT" $AGENT; do
  kill -0 $AGENT_PID 2>/dev/null || { echo "bench-dns: dv-agent exited" >&2; tail -20 "$WORK/agent.log" >&2; exit 1; }
  [ "$(date +%s)" -lt "$deadline" ] || { echo "bench-dns: dv-agent not answering after ${START_TIMEOUT}s" >&2; tail -20 "$WORK/agent.log" >&2; exit 1; }
  sleep 0.05
done
T1=$(now)
echo "dv-agent answering $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }') s after start (pid $AGENT_PID, RSS $(awk '/^VmRSS/ {print int($2/1024)}' /proc/$AGENT_PID/status) MiB)"

# Which zones the agent serves: the two named ones and whatever reverse zones
# the management prefix yields. A zone counts only if it answers its SOA
# authoritatively, so NSD is never handed a zone the agent does not hold.
ZONES=()
for z in $MGMT $SITE 53.10.in-addr.arpa 0.53.10.in-addr.arpa; do
  inns dig @$AGENT +norec +time=2 +tries=1 "$z" SOA > "$WORK/soa.txt" 2>&1 || true
  grep -q 'status: NOERROR' "$WORK/soa.txt" && grep -q 'flags:.* aa' "$WORK/soa.txt" \
    && awk -v z="$z." '$1 == z && $4 == "SOA" {f=1} END {exit !f}' "$WORK/soa.txt" && ZONES+=("$z")
done
echo "zones served by dv-agent: ${ZONES[*]}"

# --- NSD ----------------------------------------------------------------------
# NSD serves the very zones the agent serves: their AXFR, written as zone files.
{
  cat <<CONF
server:
  ip-address: $NSD
  port: 53
  zonesdir: "$WORK"
  database: ""
  pidfile: "$WORK/nsd.pid"
  xfrdfile: "$WORK/xfrd.state"
  zonelistfile: "$WORK/zone.list"
  username: ""
  server-count: 1
  verbosity: 0
  # NSD rate-limits responses per source (RRL, 200/s by default); a load
  # test from one source must switch it off.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  # The agent answers with the answer section only (no NS in authority, no
  # additional data); NSD does the same here, so both build the same-sized
  # reply for a positive answer.
  minimal-responses: yes
  logfile: "$WORK/nsd.log"
remote-control:
  control-enable: no
CONF
  for z in "${ZONES[@]}"; do printf 'zone:\n  name: %s\n  zonefile: "%s.zone"\n' "$z" "$z"; done
} > "$WORK/nsd.conf"
for z in "${ZONES[@]}"; do
  # An AXFR repeats the SOA at its end; a zone file holds it once.
  inns dig @$AGENT +noall +answer +time=5 +tries=1 AXFR "$z" | awk '!seen[$0]++' > "$WORK/$z.zone"
  echo "  AXFR $z: $(grep -vc '^;' "$WORK/$z.zone") records"
done
ip netns exec "$NS" nsd -d -c "$WORK/nsd.conf" 2> "$WORK/nsd.stderr" &
NSD_PID=$!; PIDS+=($!)
for _ in $(seq 200); do answers $NSD "provisioner-01.$MGMT" $AGENT && break; sleep 0.05; done
answers $NSD "provisioner-01.$MGMT" $AGENT || { echo "bench-dns: NSD not answering" >&2; cat "$WORK/nsd.log" "$WORK/nsd.stderr" >&2; exit 1; }
# NSD forks (main process, xfrd, one query server with server-count 1, not
# all children of the first); queries cost CPU in the server, so every process
# of the tree counts.
descendants() { local p; echo "$1"; for p in $(pgrep -P "$1"); do descendants "$p"; done; }

# --- dnsmasq ------------------------------------------------------------------
# dnsmasq serves the agent's dnsmasq export: host-record (A, and PTR), cname and
# ptr-record lines, plus local=/zone/ so that nothing under the zones is ever
# forwarded and no-resolv, so there is no upstream at all. What it does
# differently from an authoritative server:
# - it is a forwarder with local data, not a zone server: there is no SOA or
#   NS (a SOA query gets an empty NOERROR), and NXDOMAIN comes from its
#   local= rule without AA and without a SOA in the authority section, so a
#   resolver caches the negative answer by its own default rather than the
#   zone's RFC 2308 TTL (auth-zone= would add a SOA, but the export does not
#   configure one, and this measures the configuration a router would run);
# - positive answers carry AA (and RA, which an authoritative server does
#   not set); a cname= may point at another cname=, so the site alias chain
#   comes back whole, as from the agent and NSD;
# - ptr-record= takes no TTL, so PTR answers carry TTL 0 (the check below
#   reports that as a mismatch: it is the export's, not the bench's).
# The export replaces /etc/dnsmasq.conf (as --conf-file=/dev/null would).
# Logging is off (no log-queries). The configured names are held outside the
# LRU cache; its size (10,000, the most dnsmasq recommends) only keeps it from
# being the small default should anything else be cached.
inns curl -fsS --max-time 10 "http://127.0.0.1:8680/v1/dns/export/dnsmasq" > "$WORK/dnsmasq.conf"
echo "  dnsmasq export: $(grep -c '^host-record=' "$WORK/dnsmasq.conf") host-record, $(grep -c '^cname=' "$WORK/dnsmasq.conf") cname, $(grep -c '^ptr-record=' "$WORK/dnsmasq.conf") ptr-record lines"
ip netns exec "$NS" dnsmasq --no-daemon --conf-file="$WORK/dnsmasq.conf" --port=53 --listen-address=$DNSMASQ \
  --bind-interfaces --no-resolv --no-hosts --user=root --group=root --cache-size=10000 \
  --pid-file="$WORK/dnsmasq.pid" > "$WORK/dnsmasq.log" 2>&1 &
DNSMASQ_PID=$!; PIDS+=($!)
for _ in $(seq 200); do answers $DNSMASQ "provisioner-01.$MGMT" $AGENT && break; sleep 0.05; done
answers $DNSMASQ "provisioner-01.$MGMT" $AGENT || { echo "bench-dns: dnsmasq not answering" >&2; cat "$WORK/dnsmasq.log" >&2; exit 1; }

# --- same answers? -------------------------------------------------------------
# A throughput figure is worth nothing if the servers answer differently, so
# first ask each a sample of every query kind. NSD is the reference. The
# compared part is the status and the answer section (owner, TTL, type, data,
# in order: a CNAME chain's order is its meaning); flags and the authority
# section are only noted, because dnsmasq has no SOA and need not set AA.
# dnsmasq's empty answer to a SOA query is expected, so it is listed apart.
summary() { # server name type -> "STATUS|answer rrs" on line 1, "flags|authority types" on line 2
  inns dig @"$1" +time=2 +tries=1 "$2" "$3" 2>&1 | awk '
    /status:/ { s = $0; sub(/.*status: /, "", s); sub(/,.*/, "", s) }
    /;; flags:/ { f = $0; sub(/.*flags: /, "", f); sub(/;.*/, "", f) }
    /^;; ANSWER SECTION:/ { sec = "an"; next }
    /^;; AUTHORITY SECTION:/ { sec = "au"; next }
    /^;;/ || /^$/ { sec = ""; next }
    sec == "an" { an = an " " tolower($1) " " $2 " " $4 " " tolower($5) }
    sec == "au" { au = au " " $4 }
    END { print s "|" an; print f "|" au }'
}
MISMATCH=0 NOTES=0 EXPECTED=0
: > "$WORK/mismatch.txt"
while read -r kind name type; do
  ref=$(summary $NSD "$name" "$type")
  for server in agent:$AGENT dnsmasq:$DNSMASQ; do
    got=$(summary "${server#*:}" "$name" "$type")
    if [ "$(head -1 <<<"$got")" != "$(head -1 <<<"$ref")" ] && [ "$kind:${server%%:*}" = soa:dnsmasq ]; then
      EXPECTED=$((EXPECTED + 1))
      printf '  expected %-8s %s %s %s: nsd [%s], dnsmasq [%s]\n' "$kind" "${server%%:*}" "$name" "$type" \
        "$(head -1 <<<"$ref" | cut -c1-60)..." "$(head -1 <<<"$got")" >> "$WORK/mismatch.txt"
    elif [ "$(head -1 <<<"$got")" != "$(head -1 <<<"$ref")" ]; then
      MISMATCH=$((MISMATCH + 1))
      printf '  MISMATCH %-8s %s %s %s\n    nsd:  %s\n    %-5s %s\n' "$kind" "${server%%:*}" "$name" "$type" \
        "$(head -1 <<<"$ref")" "${server%%:*}:" "$(head -1 <<<"$got")" >> "$WORK/mismatch.txt"
    elif [ "$(tail -1 <<<"$got")" != "$(tail -1 <<<"$ref")" ]; then
      NOTES=$((NOTES + 1))
      printf '  note     %-8s %s %s %s: nsd flags|authority [%s], %s [%s]\n' "$kind" "${server%%:*}" "$name" "$type" \
        "$(tail -1 <<<"$ref")" "${server%%:*}" "$(tail -1 <<<"$got")" >> "$WORK/mismatch.txt"
    fi
  done
done < "$WORK/samples"
echo "answer check: $(wc -l < "$WORK/samples") sample queries x agent, dnsmasq against NSD: $MISMATCH mismatches, $NOTES flag/authority differences, $EXPECTED expected (dnsmasq has no SOA)"
# Show every mismatch, but only the first note per server and query kind: they repeat.
grep -A2 -e MISMATCH -e expected "$WORK/mismatch.txt" | grep -v '^--' || true
awk '$1 == "note" && !seen[$2 " " $3]++' "$WORK/mismatch.txt"

# --- load ---------------------------------------------------------------------
# CPU seconds (user + system) the processes have used so far; for a
# multi-threaded process /proc/PID/stat sums every thread. NSD retitles its
# processes ("nsd: server 1"), and the space inside the parenthesised name
# would shift the fields, so they are counted from after the closing ")":
# utime and stime (fields 14 and 15) are then the 12th and 13th.
cpu_of() {
  local hz total=0 pid
  hz=$(getconf CLK_TCK)
  for pid in "$@"; do
    total=$(sed 's/.*) //' "/proc/$pid/stat" | awk -v t="$total" -v hz="$hz" '{ print t + ($12 + $13) / hz }')
  done
  echo "$total"
}
# UDP datagrams the kernel dropped in the namespace because a socket's receive
# buffer was full (RcvbufErrors): lost queries a server never saw, typically
# dnsperf's opening burst arriving while the server is not scheduled.
udp_drops() { inns awk '/^Udp:/ { if (h) { print $6; exit } h = 1 }' /proc/net/snmp; }
field() { awk -v k="$2" 'index($0, k) { sub(/^[^:]*:[ \t]*/, ""); print; exit }' "$WORK/perf-$1.txt"; }
load() { # name address pids...
  local name=$1 addr=$2 c0 c1 d0 d1
  shift 2
  d0=$(udp_drops)
  c0=$(cpu_of "$@")
  inns dnsperf -s "$addr" -d "$WORK/queries" -l "$RUN" -c "$CLIENTS" -T 1 -Q 200000 -q 500 > "$WORK/perf-$name.txt" 2>&1
  c1=$(cpu_of "$@")
  d1=$(udp_drops)
  QPS[$name]=$(field "$name" "Queries per second" | awk '{print $1}')
  local completed
  completed=$(field "$name" "Queries completed" | awk '{print $1}')
  CPU_US[$name]=$(awk -v a="$c0" -v b="$c1" -v n="$completed" 'BEGIN { printf "%.2f", n ? (b - a) * 1e6 / n : 0 }')
  printf '%-9s %12.0f queries/s  %8.2f us CPU/query  lost %s, %s dropped by the kernel (receive buffer full)\n' \
    "$name" "${QPS[$name]}" "${CPU_US[$name]}" "$(field "$name" "Queries lost")" $((d1 - d0))
  printf '          response codes: %s\n' "$(field "$name" "Response codes")"
}
declare -A QPS CPU_US
echo "== dnsperf, ${RUN}s per server, $CLIENTS clients, $(wc -l < "$WORK/queries") queries in the file" \
  "(60% host A, 20% service CNAME, 10% site alias chain, 10% NXDOMAIN)"
load dv-agent $AGENT $AGENT_PID
# shellcheck disable=SC2046  # the pid list is meant to split
load nsd $NSD $(descendants $NSD_PID)
load dnsmasq $DNSMASQ $DNSMASQ_PID
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
echo "ratio dv-agent/nsd:     queries/s $(ratio "${QPS[dv-agent]}" "${QPS[nsd]}"), CPU/query $(ratio "${CPU_US[dv-agent]}" "${CPU_US[nsd]}")"
echo "ratio dv-agent/dnsmasq: queries/s $(ratio "${QPS[dv-agent]}" "${QPS[dnsmasq]}"), CPU/query $(ratio "${CPU_US[dv-agent]}" "${CPU_US[dnsmasq]}")"
echo "(target: queries/s ratio to NSD at least 1.00, CPU/query ratio below 1.00; $AGENT_BIN, nsd $(nsd -v 2>&1 | awk '{print $3; exit}') with one server process, dnsmasq $(dnsmasq --version | awk '{print $3; exit}'))"
