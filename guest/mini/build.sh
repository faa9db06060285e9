#!/usr/bin/env bash
# Builds the mini guest from Debian packages: a Debian kernel and an initramfs
# of busybox, dropbear (with OpenSSH's sftp-server for SFTP) and this folder's
# init, nginx (for the lb service) and Python (for Ansible's modules). Writes OUT/vmlinuz and OUT/initrd.img.
# Needs: apt (lists updated), dpkg-deb, cpio, lz4, busybox-static,
# dropbear-bin, openssh-sftp-server, python3.11-minimal, libpython3.11-stdlib.
#   usage: build.sh OUT
set -euo pipefail
out=${1:?usage: build.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "build.sh: no kernel package found (run apt-get update)" >&2; exit 1; }
# Retried: a mirror that fails once is no reason to fail a set-up. apt's own error goes into the message (in a network namespace without DNS it says so).
if ! (cd "$work" && apt-get download -qq -o Acquire::Retries=3 "$kpkg" nginx 2>"$work/apt.err"); then
  echo "build.sh: cannot download $kpkg from the Debian mirror: $(grep '^E:' "$work/apt.err" | head -n 1) (no network here? build once where apt works: it is cached)" >&2
  exit 1
fi
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
# dbclient (as ssh too) and dropbearconvert: hosts of an environment that trusts itself reach their peers.
for bin in /usr/sbin/dropbear /usr/bin/dropbearkey /usr/bin/dbclient /usr/lib/dropbear/dropbearconvert "$work/nginx-bin"; do
  cp "$bin" "$root/bin/$(basename "$bin" | sed 's/-bin$//')"
  for lib in $(ldd "$bin" | awk '/=> \// {print $3}'); do cp -n "$lib" "$root/lib/x86_64-linux-gnu/"; done
done
cp /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
ln -s dbclient "$root/bin/ssh"
# Debian's dropbear runs /usr/lib/sftp-server for the SFTP subsystem.
mkdir -p "$root/usr/lib"
cp /usr/lib/openssh/sftp-server "$root/usr/lib/sftp-server"

# Python (Debian's python3.11, as this machine has it installed), so Ansible's modules run, not only raw:
# the interpreter (Debian builds most of the C modules into it), the standard library as the .pyc files
# Debian compiled at install (sourceless: half the size, nothing compiled at boot), without what a
# module on a guest has no use for (tests, the IDE, Tk, 2to3, pip's bundle, docs, venv, sqlite, curses).
py=/usr/bin/python3.11
lib=/usr/lib/python3.11
mkdir -p "$root/usr/bin" "$root$lib/lib-dynload"
cp "$py" "$root/usr/bin/"
ln -s python3.11 "$root/usr/bin/python3"
ln -s /usr/bin/python3.11 "$root/bin/python3"
(cd "$lib" && find . \( -path ./test -o -path ./idlelib -o -path ./tkinter -o -path ./turtledemo -o -path ./lib2to3 \
    -o -path ./ensurepip -o -path ./pydoc_data -o -path ./venv -o -path ./sqlite3 -o -path ./curses -o -path ./dbm \
    -o -path ./unittest -o -path ./distutils -o -path ./__phello__ -o -path ./lib-dynload -o -path './config-*' \
    -o -path ./dist-packages -o -path ./site-packages \) -prune -o -name '*.cpython-311.pyc' -path '*/__pycache__/*' -print) |
  while read -r f; do
    d=$(dirname "$(dirname "$f")")
    m=$(basename "$f" .cpython-311.pyc)
    case "$m" in pydoc | turtle | antigravity | this | doctest | idle | tabnanny | pdb) continue ;; esac
    mkdir -p "$root$lib/$d"
    cp "$lib/$f" "$root$lib/$d/$m.pyc"
  done
# Python finds its library by the landmark os.py (or os.pyc) under lib/python3.11 of its prefix.
[ -f "$root$lib/os.pyc" ] || { echo "build.sh: no compiled standard library in $lib/__pycache__ (is libpython3.11-minimal installed?)" >&2; exit 1; }
cp "$lib"/_sysconfigdata_*.py "$root$lib/" 2>/dev/null || true
for so in "$lib"/lib-dynload/*.so; do
  case "$(basename "$so")" in _test* | xx* | _ctypes_test* | _curses* | readline* | _dbm* | _sqlite3* | _ssl* | _hashlib* | nis* | ossaudiodev* | audioop* | _tkinter*) continue ;; esac
  cp "$so" "$root$lib/lib-dynload/"
  for l in $(ldd "$so" | awk '/=> \// {print $3}'); do cp -n "$l" "$root/lib/x86_64-linux-gnu/"; done
done
for l in $(ldd "$py" | awk '/=> \// {print $3}'); do cp -n "$l" "$root/lib/x86_64-linux-gnu/"; done

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
# lz4, not gzip: the kernel unpacks it faster under TCG (init starts 0.2-0.4 s sooner, Python included).
(cd "$root" && find . | cpio -o -H newc --quiet | lz4 -l -q) > "$out/initrd.img.tmp"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$kpkg" > "$out/kernel-package"
echo "mini guest: $out/vmlinuz ($kver), $out/initrd.img ($(du -h "$out/initrd.img" | cut -f1))"
