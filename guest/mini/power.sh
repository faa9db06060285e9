#!/bin/sh
# The ACPI power button (QMP system_powerdown, VirtualBox acpipowerbutton): a clean shutdown.
echo "mini: power button: shutting down" > /dev/console
killall dropbear 2>/dev/null
sync
umount /sysroot 2>/dev/null
poweroff -f
