#!/bin/sh
# The lb service on the mini guest: nginx with the rendered config. Linked
# into /etc/lab/start.d by `lab lb start`, so the guest starts it at boot.
#   usage: lb.sh start|stop|reload|status
conf=/opt/lb/nginx.conf
pidfile=/run/lb-nginx.pid

# An empty or stale pidfile is not a running service (kill -0 with no pid would signal our own group).
running() { pid=$(cat "$pidfile" 2>/dev/null); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then echo "lb: already running (pid $(cat "$pidfile"))"; exit 0; fi
    mkdir -p /var/lib/lb /var/log
    nginx -e /var/log/lb-nginx.log -t -q -c "$conf" || exit 1
    # In the foreground under start-stop-daemon: nginx's own daemon mode dies with the SSH session here.
    start-stop-daemon -S -b -p "$pidfile" -x /bin/nginx -- -e /var/log/lb-nginx.log -g 'daemon off;' -c "$conf"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      if running && netstat -ltn 2>/dev/null | grep -q ':80 '; then echo "lb: running (pid $(cat "$pidfile"))"; exit 0; fi
      sleep 0.2
    done
    echo "lb: nginx did not start listening: $(tail -n 3 /var/log/lb-nginx.log)" >&2; exit 1 ;;
  reload)
    # A new config is checked first; nginx's reload lets the old workers finish their connections.
    nginx -e /var/log/lb-nginx.log -t -q -c "$conf" || exit 1
    if running; then kill -HUP "$(cat "$pidfile")"; echo "lb: reloaded"; else echo "lb: not running (config checked)"; fi ;;
  stop)
    if ! running; then echo "lb: not running"; exit 0; fi
    kill -QUIT "$(cat "$pidfile")"
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do running || break; sleep 0.2; done
    running && { echo "lb: still running" >&2; exit 1; }
    echo "lb: stopped" ;;
  status)
    if running; then echo "lb: running (pid $(cat "$pidfile"))"; else echo "lb: stopped"; exit 3; fi ;;
  *)
    echo "usage: $0 start|stop|reload|status" >&2; exit 2 ;;
esac
