# Sourced by the client checks: starts `safegate demo` in the background and waits until
# the case is loaded, stops it on exit, and prints its log when the check failed.
#
#   demo_start BINARY WORKDIR ARGS...   run BINARY demo ARGS... in WORKDIR
#   demo_wait                           until the demo has loaded the case (at most 90 s)
# Sets demo_pid and demo_log; installs an EXIT trap that also removes $demo_tmp.

demo_pid=""
demo_tmp="$(mktemp -d "${TMPDIR:-/tmp}/safegate-client.XXXXXX")"
demo_log="$demo_tmp/demo.log"

demo_cleanup() {
    local status=$?
    if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
        kill "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$demo_log" ]; then
        echo "---- demo log ($demo_log) ----" >&2
        cat "$demo_log" >&2
        echo "---- end of demo log ----" >&2
    fi
    rm -rf "$demo_tmp"
    exit "$status"
}
trap demo_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

demo_start() {
    local binary="$1" workdir="$2"
    shift 2
    # NO_COLOR: plain log lines in the file the failure path prints.
    (cd "$workdir" && NO_COLOR=1 exec "$binary" demo "$@") >"$demo_log" 2>&1 &
    demo_pid=$!
}

demo_wait() {
    local deadline=$((SECONDS + 90))
    # The demo prints this once the case is loaded and the walk-through has run.
    until grep -q "Press Ctrl-C to stop" "$demo_log" 2>/dev/null; do
        if ! kill -0 "$demo_pid" 2>/dev/null; then
            echo "the demo gateway exited before it was ready" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "the demo gateway was not ready within 90 s" >&2
            return 1
        fi
        sleep 0.3
    done
}
