#!/usr/bin/env bash
# The main job on the built-in default: a real lab of small QEMU guests.
# It installs what is missing, scaffolds a lab with `lab init`, makes its
# network (a bridge holding the gateway address, in a network namespace of
# its own), runs `lab serve` there, and starts the demo environment with
# `lab env start-all demo`: the mini image is built from its kickstart, a
# load balancer and two workers are cloned from it and booted, their services
# (hello on the workers, nginx on the balancer) deployed, started and tested.
# Then `lab hello deploy` and `lab hello test`, a request through the
# balancer, `lab env status demo`; then it stops and cleans up.
# Run as root. --keep leaves the lab running and prints how to use it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "0. setting up: Debian and npm packages, the build, the mini guest (cached after the first run)"
bash scripts/setup.sh

labdir=$(mktemp -d /tmp/lab-demo.XXXXXX)
ns=labdemo$$
server=""
lab() { ip netns exec "$ns" node "$repo/dist/cli.js" --lab "$labdir" "$@"; }
db() { node -e "const d=require('$labdir/inventory/db.json'); $1"; }

cleanup() {
  set +e
  lab env stop demo --deadline 20 >/dev/null 2>&1
  for vm in demo-lb-1 demo-worker-1 demo-worker-2 mini; do lab image del "$vm" --force >/dev/null 2>&1; done
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$labdir"
}
trap 'cleanup' EXIT
[ "$keep" = 1 ] && trap - EXIT

step "1. a new lab folder: lab init $labdir"
node "$repo/dist/cli.js" init "$labdir"

step "2. the lab network: namespace $ns, bridge labnet, gateway 10.77.0.1/24; lab doctor checks the machine"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add labnet type bridge
ip -n "$ns" addr add 10.77.0.1/24 dev labnet
ip -n "$ns" link set labnet up
# The CentOS ISO of the prod environment is not here: a warning, not a failure.
lab doctor

step "3. lab serve, bound to the gateway: kickstarts, PXE files, boot callbacks"
# Not through the lab() function: $! must be the server itself, not a subshell, for cleanup to stop it.
ip netns exec "$ns" node "$repo/dist/cli.js" --lab "$labdir" serve > "$labdir/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  ip netns exec "$ns" curl -fsS -o /dev/null http://10.77.0.1:8077/healthz 2>/dev/null && break
  sleep 0.1
done
head -n 1 "$labdir/serve.log"

step "4. lab env start-all demo: image, hosts, callbacks, services at their versions, tests"
lab env start-all demo

step "5. lab hello deploy: version 1.0.0 to the workers over SSH, in parallel, host keys pinned"
lab hello deploy

step "6. lab hello test, straight and through the load balancer (--via lb)"
lab hello test
lab hello test --via lb
lb=$(db "console.log(d.hosts['demo-lb-1'].ip)")
echo "and by hand, from the lab host: curl http://$lb/ (twice)"
ip netns exec "$ns" curl -sS "http://$lb/"
ip netns exec "$ns" curl -sS "http://$lb/"

step "7. lab env status demo"
lab env status demo

step "8. the boot log (inventory/booted.log)"
cat "$labdir/inventory/booted.log"

L="ip netns exec $ns node $repo/dist/cli.js --lab $labdir"
if [ "$keep" = 1 ]; then
  cat <<EOF2

The lab keeps running: namespace $ns, server pid $server, lab folder $labdir.
Get into a host:   $L ssh demo-worker-1
Try next:
  $L hello deploy --version 1.1.0 && $L hello test
  $L monitor demo --daemon --interval 5      (then: $L ssh demo-worker-1 -- 'sh -c "while :; do :; done" &')
  $L monitor demo --status
  $L env start-worker demo demo-worker-2
  tail -f $labdir/inventory/booted.log
Stop it all: $L env stop demo; for vm in demo-lb-1 demo-worker-1 demo-worker-2 mini; do $L image del \$vm --force; done; kill $server; ip netns del $ns
EOF2
else
  cat <<EOF2

Done. Run it with --keep to keep the lab and try it yourself: get into a host with
\`lab ssh demo-worker-1\`, deploy another version (\`lab hello deploy --version 1.1.0\`),
let the monitor scale the workers (\`lab monitor demo --daemon\`).
EOF2
  step "stopping: lab env stop demo, deleting the VMs, stopping the server, removing the namespace"
fi
