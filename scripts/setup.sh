#!/usr/bin/env bash
# Installs what lab and its tests need on a fresh Debian machine (run as root),
# then the npm packages and the build. Safe to run again: it only installs
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# iproute2: network namespaces for the lab network and the tests; iputils-ping:
# the ICMP probes of `lab hosts filter`; curl: the demo's requests; fping:
# the ping benchmark's yardstick; qemu-*: the QEMU provider; busybox-static,
# dropbear-bin, openssh-sftp-server, python3.11-minimal, libpython3.11-stdlib, cpio, lz4: the mini
# guest (guest/mini/build.sh); openssh-client:
# ssh and scp for people and the tests; libarchive-tools: bsdtar, to take the
# installer kernel out of an ISO; pxelinux, syslinux-common: PXE installs;
# genisoimage: the tests make an installer ISO; ansible-core: the tests drive
# guests with Ansible through lab's inventory; zsh: the tests check `lab completion zsh` in it;
# chromium: the dashboard is tested in it, headless (driven by playwright-core);
# libvirt-clients: virsh, the libvirt provider's only tool; libvirt-daemon-system
# (its -sysv variant: the systemd one pulls systemd-sysv), openssh-server: the
# tests' two hypervisor hosts (libvirtd and sshd in namespaces; none is started here);
# dnsmasq-base: the DHCP server libvirt runs, for the mini guest's DHCP test; extlinux:
# `lab image export` gives a mini disk its bootloader; vagrant: the tests add an exported box; packer:
# the tests reach a guest with a client of Go's SSH library (and bench:packer).
packages=(iproute2 iputils-ping curl fping qemu-system-x86 qemu-utils busybox-static dropbear-bin openssh-sftp-server
  python3.11-minimal libpython3.11-stdlib cpio lz4 openssh-client
  libarchive-tools pxelinux syslinux-common genisoimage ansible-core zsh chromium
  libvirt-clients libvirt-daemon-system libvirt-daemon-system-sysv openssh-server dnsmasq-base extlinux vagrant packer)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The mini guest's build downloads the current Debian kernel package: it needs package lists.
if [ ${#missing[@]} -gt 0 ] || ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
# The mini guest is built (or found in its cache) here, where apt can reach the
# mirror: the demo and the tests boot it inside network namespaces that cannot.
node --input-type=module -e "const { miniGuest } = await import('./dist/distros/mini/guest.js'); const g = await miniGuest((l) => console.log('setup: ' + l)); console.log('setup: mini guest ' + g.kernel.replace(/\/vmlinuz$/, ''));"
echo "setup: ready"
