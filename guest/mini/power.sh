#!/bin/sh
# A clean shutdown: poweroff (the default: the ACPI power button, QMP
# system_powerdown, VirtualBox acpipowerbutton), halt or reboot. PID 1 runs it
# for busybox's poweroff, halt and reboot and for shutdown (their signals).
action=${1:-poweroff}
echo "mini: ${1:-power button}: shutting down" > /dev/console
killall dropbear 2>/dev/null
sync
umount /sysroot 2>/dev/null
case "$action" in
  reboot) reboot -f ;;
  halt) halt -f ;;
  *) poweroff -f ;;
esac
