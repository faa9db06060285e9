#!/usr/bin/env bash
# Builds the mini guest from Debian packages: a Debian kernel and an initramfs
# of busybox, dropbear (with OpenSSH's sftp-server for SFTP) and this folder's
# init, and nginx (for the lb service). Writes OUT/vmlinuz and OUT/initrd.img.
# Needs: apt (lists updated), dpkg-deb, cpio, gzip, busybox-static,
# dropbear-bin, openssh-sftp-server.
#   usage: build.sh OUT
set -euo pipefail
out=${1:?usage: build.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "build.sh: no kernel package found (run apt-get update)" >&2; exit 1; }
(cd "$work" && apt-get download -qq "$kpkg" nginx 2>/dev/null) || { echo "build.sh: cannot download $kpkg from the Debian mirror (no network here? build once where apt works: it is cached)" >&2; exit 1; }
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
kver=$(ls "$work/kernel/lib/modules")
kmod="$work/kernel/lib/modules/$kver/kernel"

root="$work/root"
mkdir -p "$root"/{bin,sbin,etc/dropbear,proc,sys,dev,tmp,run,root/.ssh,sysroot,var/log,lib64,lib/x86_64-linux-gnu,"lib/modules/$kver/kernel"}
chmod 700 "$root/root" "$root/root/.ssh"

cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# Only the drivers QEMU's default devices need (e1000 or virtio NIC, virtio
# disk), ext4 for the installed system, the ACPI button for power-off, and
# QEMU's fw_cfg (how a clone is handed its own callback token).
for m in drivers/net/ethernet/intel/e1000 drivers/net/virtio_net.ko drivers/net/net_failover.ko net/core/failover.ko \
  drivers/virtio drivers/block/virtio_blk.ko fs/ext4 fs/jbd2 fs/mbcache.ko lib/crc16.ko lib/libcrc32c.ko \
  crypto/crc32c_generic.ko drivers/acpi/button.ko drivers/input/evdev.ko drivers/firmware/qemu_fw_cfg.ko; do
  mkdir -p "$root/lib/modules/$kver/kernel/$(dirname "$m")"
  cp -r "$kmod/$m" "$root/lib/modules/$kver/kernel/$m"
done
cp "$work/kernel/lib/modules/$kver"/modules.{order,builtin} "$root/lib/modules/$kver/" 2>/dev/null || true
"$root/bin/busybox" depmod -b "$root" "$kver"

# nginx from Debian's package, for the lb service (its libraries from this machine, as dropbear's).
dpkg-deb -x "$work"/nginx_*.deb "$work/nginx"
cp "$work/nginx/usr/sbin/nginx" "$work/nginx-bin"
for bin in /usr/sbin/dropbear /usr/bin/dropbearkey "$work/nginx-bin"; do
  cp "$bin" "$root/bin/$(basename "$bin" | sed 's/-bin$//')"
  for lib in $(ldd "$bin" | awk '/=> \// {print $3}'); do cp -n "$lib" "$root/lib/x86_64-linux-gnu/"; done
done
cp /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
# Debian's dropbear runs /usr/lib/sftp-server for the SFTP subsystem.
mkdir -p "$root/usr/lib"
cp /usr/lib/openssh/sftp-server "$root/usr/lib/sftp-server"

printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:*:19000:0:99999:7:::\n' > "$root/etc/shadow"
printf 'root:x:0:\n' > "$root/etc/group"
printf '/bin/sh\n' > "$root/etc/shells"
install -m 755 "$here/init" "$root/init"
install -m 755 "$here/udhcpc.script" "$root/etc/udhcpc.script"
install -m 755 "$here/power.sh" "$root/etc/power.sh"
# busybox has poweroff, halt and reboot (signals to PID 1, which init traps) but no shutdown.
rm -f "$root/bin/shutdown"
install -m 755 "$here/shutdown" "$root/bin/shutdown"

mkdir -p "$out"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.img.tmp"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$kpkg" > "$out/kernel-package"
echo "mini guest: $out/vmlinuz ($kver), $out/initrd.img ($(du -h "$out/initrd.img" | cut -f1))"
