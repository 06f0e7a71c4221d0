#!/usr/bin/env bash
# `make demo`: the whole pipeline on the files in testdata/, with nothing to set up.
#   1. a fresh pond: copy, list, show, log, verify;
#   2. a `logfile` node mirroring a Hyperliquid-style hourly layout (grows, then a new hour);
#   3. a `mongo` node downstream of it, storing every trade line in a local SecantusDB server,
#      counted back through pymongo.
set -euo pipefail
pond=$(realpath "${1:-target/debug/pond}")
venv=${VENV:-$(pwd)/.venv}
here=$(cd "$(dirname "$0")" && pwd)
demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/pond-demo.XXXXXX")
export POND="$demo_dir/pond"
server_pid=
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; true; }
trap cleanup EXIT

step() { printf '\n$ %s\n' "$*"; "$@"; }

echo "== the pond"
step "$pond" init
step "$pond" mkdir -p /logs/casparwater
step "$pond" copy "$here/casparwater/casparwater.json" /logs/casparwater
step "$pond" list -l /logs/casparwater
step "$pond" show /logs/casparwater/casparwater.json

echo; echo "== logfile -> pond -> mongo"
host="$demo_dir/host/node_trades/hourly"
mkdir -p "$host/20250624"
trades="$here/hl/node_trades/hourly/20250624/2"
head -n 250 "$trades" > "$host/20250624/2"
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/secantusd-py" --port "$port" --storage-path :memory: >"$demo_dir/secantus.log" 2>&1 &
server_pid=$!
export MONGODB_URI="mongodb://127.0.0.1:$port/?directConnection=true"
for _ in $(seq 100); do
  "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done
cat > "$demo_dir/hl.yaml" <<YAML
name: hl-trades
active_pattern: "$host/*/*"
pond_path: "logs/hl/node_trades"
downstream: ["/etc/trades-mongo"]
YAML
cat > "$demo_dir/trades-mongo.yaml" <<'YAML'
source: "logs/hl/node_trades/**"
mongodb:
  uri: "${env:MONGODB_URI}"
  database: hl
  collection: trades
format: hyperliquid/node_trades
indexes: [ { keys: { time: 1 } } ]
YAML
step "$pond" mknod mongo /etc/trades-mongo --config-path "$demo_dir/trades-mongo.yaml"
step "$pond" mknod logfile /etc/hl-trades --config-path "$demo_dir/hl.yaml"
step "$pond" run /etc/hl-trades sync
echo "(the node appends 150 more lines, the hour rolls over, a partial line is being written)"
tail -n +251 "$trades" >> "$host/20250624/2"
mkdir -p "$host/20250625"
head -n 20 "$trades" > "$host/20250625/0"
printf '{"coin":"BTC","side":"B"' >> "$host/20250625/0"
step "$pond" run /etc/hl-trades sync
step "$pond" run /etc/hl-trades sync
step "$pond" run /etc/trades-mongo status
step "$pond" run /etc/hl-trades b3sum
step "$pond" log --limit 4
step "$pond" verify
lines=$(cat "$host"/*/* | grep -c '}$' || true)
"$venv/bin/python" - "$MONGODB_URI" "$lines" <<'PY'
import sys, pymongo
client = pymongo.MongoClient(sys.argv[1])
stored = client.hl.trades.count_documents({})
distinct = len(client.hl.trades.distinct("_id"))
print(f"\ncomplete trade lines on the host: {sys.argv[2]} (the 20 lines of hour 0 repeat hour 2's first 20:")
print(f"  the same trades, so the natural key stores them once)")
print(f"documents in hl.trades: {stored} ({distinct} distinct ids), rejected: {client.hl.trades_rejects.count_documents({})}")
doc = client.hl.trades.find_one(sort=[("time", 1)])
print(f"earliest trade: {doc['time']} {doc['coin']} px={doc['px']} sz={doc['sz']}")
PY
printf '\nThe demo pond is %s (remove it when done).\n' "$POND"
