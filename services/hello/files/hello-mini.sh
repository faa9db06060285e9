#!/bin/sh
# The hello service on the mini guest: busybox httpd serving the current
# release. Linked into /etc/lab/start.d by `lab hello start`, so the guest
# starts it again at boot.
#   usage: hello.sh start|stop|restart|status
pidfile=/run/hello.pid
root=/opt/hello/current/www
port=${HELLO_PORT:-8080}

# An empty or stale pidfile is not a running service (kill -0 with no pid would signal our own group).
running() { pid=$(cat "$pidfile" 2>/dev/null); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then echo "hello: already running (pid $(cat "$pidfile"))"; exit 0; fi
    [ -d "$root" ] || { echo "hello: nothing deployed at $root (run lab hello deploy)" >&2; exit 1; }
    # httpd resolves its home once at start: a deploy restarts it to serve a new release.
    start-stop-daemon -S -b -m -p "$pidfile" -x /bin/httpd -- -f -p "$port" -h "$(readlink -f "$root")"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      if running && netstat -ltn 2>/dev/null | grep -q ":$port "; then echo "hello: running on port $port (pid $(cat "$pidfile"))"; exit 0; fi
      sleep 0.2
    done
    echo "hello: did not start listening on port $port" >&2; exit 1 ;;
  stop)
    if ! running; then rm -f "$pidfile"; echo "hello: not running"; exit 0; fi
    start-stop-daemon -K -p "$pidfile" -s TERM
    for _ in 1 2 3 4 5 6 7 8 9 10; do running || break; sleep 0.2; done
    running && { echo "hello: still running after TERM" >&2; exit 1; }
    rm -f "$pidfile"; echo "hello: stopped" ;;
  restart)
    "$0" stop && "$0" start ;;
  status)
    if running; then echo "hello: running (pid $(cat "$pidfile"))"; else echo "hello: stopped"; exit 3; fi ;;
  *)
    echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
