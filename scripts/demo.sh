#!/usr/bin/env bash
# The main job on the built-in default: a lab folder from `lab init`, its
# network in a namespace of its own, `lab serve` on the gateway, hosts fetching
# their kickstarts and calling back, and the host manager pinging them.
#
# Until the hostbuilder lands (`lab image build`), the hosts are network
# namespaces on the lab bridge at their leased addresses, standing in for
# guests: they make the same HTTP requests an installer makes and answer real
# pings. Run as root. --keep leaves the lab running and prints how to use it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1

bash scripts/setup.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
labdir=$(mktemp -d /tmp/lab-demo.XXXXXX)
ns=labdemo$$
hosts=(demo-lb-1 demo-worker-1 demo-worker-2)
server=""
lab() { node "$repo/dist/cli.js" --lab "$labdir" "$@"; }
in_ns() { ip netns exec "$ns" "$@"; }

cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  for i in "${!hosts[@]}"; do ip netns del "$ns-h$i" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$labdir"
}
if [ "$keep" = 0 ]; then trap cleanup EXIT; fi

step "1. a new lab folder: lab init $labdir"
lab init "$labdir"

step "2. lab check (the mini image needs no ISO)"
lab check --images mini

step "3. the lab network: namespace $ns, bridge labnet, gateway 10.77.0.1/24"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add labnet type bridge
ip -n "$ns" addr add 10.77.0.1/24 dev labnet
ip -n "$ns" link set labnet up

step "4. lab serve, bound to the gateway"
in_ns node "$repo/dist/cli.js" --lab "$labdir" serve > "$labdir/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  in_ns curl -fsS -o /dev/null http://10.77.0.1:8077/healthz 2>/dev/null && break
  sleep 0.1
done
head -n 1 "$labdir/serve.log"

step "5. what demo-worker-1's installer will get (lab kickstart demo-worker-1, first lines)"
lab kickstart demo-worker-1 | sed -n '1,9p'
lease() { node -e 'const d=require(process.argv[1]);console.log(d.leases[process.argv[2]][process.argv[3]])' "$labdir/inventory/db.json" "$1" "$2"; }
mac=$(lease demo-worker-1 mac)
echo "... and its PXE file, GET /pxe/pxelinux.cfg/01-${mac//:/-}:"
in_ns curl -fsS "http://10.77.0.1:8077/pxe/pxelinux.cfg/01-${mac//:/-}" | sed 's/^/    /'

step "6. hosts boot: each fetches its kickstart, then calls back from its own address"
for i in "${!hosts[@]}"; do
  h=${hosts[$i]}
  hns="$ns-h$i"
  ip=$(lease "$h" ip)
  mac=$(lease "$h" mac)
  ip netns add "$hns"
  ip -n "$ns" link add "dv$$$i" type veth peer name eth0 netns "$hns"
  ip -n "$ns" link set "dv$$$i" master labnet up
  ip -n "$hns" link set eth0 address "$mac"
  ip -n "$hns" addr add "$ip/24" dev eth0
  ip -n "$hns" link set eth0 up
  ip -n "$hns" link set lo up
  ks=$(ip netns exec "$hns" curl -fsS --retry 5 --retry-connrefused "http://10.77.0.1:8077/ks/$h")
  cb=$(printf '%s\n' "$ks" | grep -o '"http://[^"]*/booted?[^"]*"' | tr -d '"')
  cb=${cb//\$\{mac\}/$mac}
  cb=${cb//\$\{ip\}/$ip}
  printf '%-14s %-10s %s -> ' "$h" "$ip" "$mac"
  ip netns exec "$hns" curl -fsS "$cb"
done

step "7. the boot log (inventory/booted.log)"
cat "$labdir/inventory/booted.log"

step "8. lab hosts logged"
lab hosts logged

step "9. demo-worker-2 goes away; lab hosts filter pings every logged host"
ip netns del "$ns-h2"
in_ns node "$repo/dist/cli.js" --lab "$labdir" hosts filter

step "10. lab hosts list: the current hosts"
lab hosts list

if [ "$keep" = 1 ]; then
  cat <<EOF2

The lab keeps running (server pid $server, lab folder $labdir).
  lab --lab $labdir hosts list
  ip netns exec $ns curl -s http://10.77.0.1:8077/api/hosts
  tail -f $labdir/inventory/booted.log
Stop it: kill $server; ip netns del $ns; ip netns del $ns-h0; ip netns del $ns-h1
EOF2
else
  step "done: stopping the server and removing the namespaces (run with --keep to look around)"
fi
