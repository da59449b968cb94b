#!/bin/sh
# A command rotation function that hangs: records its child's pid, then waits forever.
sleep 300 &
echo $! > "$PROBE_DIR/hang.pid"
echo "hanging in step" >&2
wait
