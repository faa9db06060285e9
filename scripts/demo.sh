#!/usr/bin/env bash
# The main job on the built-in default: a real lab of small QEMU guests.
# It scaffolds a lab with `lab init`, makes its network (a bridge holding the
# gateway address, in a network namespace of its own), runs `lab serve` on the
# gateway, builds the mini image from its kickstart, clones it into the demo
# environment's hosts, boots them, runs the host manager over them, and
# deploys, starts and tests the hello service on the workers over SSH.
# Run as root. --keep leaves the lab running and prints how to use it.
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
lab() { ip netns exec "$ns" node "$repo/dist/cli.js" --lab "$labdir" "$@"; }
db() { node -e "const d=require('$labdir/inventory/db.json'); $1"; }

cleanup() {
  set +e
  for vm in "${hosts[@]}" mini; do lab image del "$vm" --force >/dev/null 2>&1; done
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$labdir"
}
trap 'cleanup' EXIT
[ "$keep" = 1 ] && trap - EXIT

step "1. a new lab folder: lab init $labdir"
node "$repo/dist/cli.js" init "$labdir"

step "2. the lab network: namespace $ns, bridge labnet, gateway 10.77.0.1/24"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add labnet type bridge
ip -n "$ns" addr add 10.77.0.1/24 dev labnet
ip -n "$ns" link set labnet up
lab check --images mini

step "3. lab serve, bound to the gateway"
# Not through the lab() function: $! must be the server itself, not a subshell, for cleanup to stop it.
ip netns exec "$ns" node "$repo/dist/cli.js" --lab "$labdir" serve > "$labdir/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  ip netns exec "$ns" curl -fsS -o /dev/null http://10.77.0.1:8077/healthz 2>/dev/null && break
  sleep 0.1
done
head -n 1 "$labdir/serve.log"

step "4. what demo-worker-1's installer would get (lab kickstart demo-worker-1, first lines)"
lab kickstart demo-worker-1 | sed -n '1,8p'
lab kickstart --all --lint

step "5. lab image build mini: a QEMU VM installs itself from its kickstart and calls back"
lab image build mini
lab image list

step "6. the demo environment's hosts: linked clones of mini, each with its own name, MAC and address"
for h in "${hosts[@]}"; do lab image clone mini "$h"; done
for h in "${hosts[@]}"; do lab image start "$h"; done
echo "waiting for their boot callbacks..."
for _ in $(seq 1 240); do
  n=$(db "console.log(['demo-lb-1','demo-worker-1','demo-worker-2'].filter(h => d.hosts[h] && d.hosts[h].bootCount > 0).length)")
  [ "$n" = 3 ] && break
  sleep 0.5
done

step "7. the boot log (inventory/booted.log)"
cat "$labdir/inventory/booted.log"

step "8. lab hosts logged"
lab hosts logged

step "9. into demo-worker-1 over SSH (lab ssh), with the host key it sent at its callback pinned"
ip=$(db "console.log(d.hosts['demo-worker-1'].ip)")
lab ssh demo-worker-1 -- 'echo "$(hostname): up $(cut -d" " -f1 /proc/uptime) s, $(ip -4 -o addr show eth0 | awk "{print \$4}")"'

step "10. the services of the lab (lab services)"
lab services

step "11. lab hello deploy: version 1.0.0 to the workers over SSH, in parallel (and /etc/lab/cluster.json)"
lab hello deploy

step "12. lab hello start, then lab hello test: HTTP 200 and the version, from the lab host"
lab hello start
lab hello test
echo "and by hand: curl http://$ip:8080/"
ip netns exec "$ns" curl -sS "http://$ip:8080/"

step "13. demo-worker-2 powers off; lab hosts filter pings every logged host"
lab image stop demo-worker-2
lab hosts filter

step "14. lab hosts list: the current hosts; lab hello test skips the one that is down"
lab hosts list
lab hello test

if [ "$keep" = 1 ]; then
  cat <<EOF2

The lab keeps running: namespace $ns, server pid $server, lab folder $labdir.
  ip netns exec $ns node $repo/dist/cli.js --lab $labdir hosts list
  ip netns exec $ns node $repo/dist/cli.js --lab $labdir ssh demo-worker-1
  ip netns exec $ns node $repo/dist/cli.js --lab $labdir hello test
  tail -f $labdir/inventory/booted.log
Next: lab image start demo-worker-2, lab hosts filter, lab hello deploy --version 1.1.0, lab image clone mini demo-worker-3.
Stop it all: for vm in ${hosts[*]} mini; do ip netns exec $ns node $repo/dist/cli.js --lab $labdir image del \$vm --force; done; kill $server; ip netns del $ns
EOF2
else
  step "done: deleting the VMs, stopping the server, removing the namespace (--keep to look around)"
fi
