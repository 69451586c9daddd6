#!/bin/bash
# flock /tmp/clipper-cpu.lock bench/grpc-isolation/run-closed.sh SERVER CLIENT [calls] [concurrency]: starts
# probe.mjs SERVER (no load), runs closed.mjs CLIENT against it, stops it. SERVER and CLIENT as in those files.
cd "$(dirname "$0")/../.."
SERVER_OPTS=${SERVER_OPTS:-'{}'} node bench/grpc-isolation/probe.mjs $1 none > /tmp/srv.$$ 2>&1 &
SPID=$!
for i in $(seq 1 200); do grep -q '"pid"' /tmp/srv.$$ 2>/dev/null && break; sleep 0.1; done
INFO=$(grep '"pid"' /tmp/srv.$$)
ADDR=$(echo "$INFO" | node -pe 'JSON.parse(require("fs").readFileSync(0,"utf8")).address')
URL=$(echo "$INFO" | node -pe 'JSON.parse(require("fs").readFileSync(0,"utf8")).url')
T=$ADDR; [ "$2" = binary ] && T=$URL
echo -n "server $1 $SERVER_OPTS: "
node bench/grpc-isolation/closed.mjs $2 $T $SPID ${3:-20000} ${4:-16}
kill -TERM $SPID; wait $SPID 2>/dev/null; rm -f /tmp/srv.$$
