#!/usr/bin/env bash
# Soak test (issue 9): a fresh onair with SOAK_PUBLISHERS publishers, SOAK_PLAYERS RTMP players
# and SOAK_HLS + SOAK_LLHLS HLS viewers from `onair bench`, for SOAK_DURATION. The server's RSS and
# goroutine count are sampled from /metrics every SOAK_SAMPLE seconds; at the end the samples
# after SOAK_WARMUP are compared with their mean (flat = every sample within ±SOAK_TOLERANCE %).
#
#   scripts/soak.sh                          # 30 min, 20 publishers, 500 players, 100+100 HLS
#   SOAK_DURATION=2m SOAK_WARMUP=30s scripts/soak.sh
#
# Output (SOAK_OUT, default /tmp/onair-soak): samples.csv, bench.txt, bench.json, server.log,
# summary.md (a markdown table, as in docs/reliability.md). Exit status 0 when flat, 1 when not.
set -euo pipefail

SOAK_DURATION=${SOAK_DURATION:-30m}
SOAK_WARMUP=${SOAK_WARMUP:-5m}
SOAK_SAMPLE=${SOAK_SAMPLE:-30}
SOAK_RAMP=${SOAK_RAMP:-2m}
SOAK_PUBLISHERS=${SOAK_PUBLISHERS:-20}
SOAK_PLAYERS=${SOAK_PLAYERS:-500}
SOAK_HLS=${SOAK_HLS:-100}
SOAK_LLHLS=${SOAK_LLHLS:-100}
SOAK_TOLERANCE=${SOAK_TOLERANCE:-10}
SOAK_OUT=${SOAK_OUT:-/tmp/onair-soak}
SOAK_RTMP_PORT=${SOAK_RTMP_PORT:-19350}
SOAK_HTTP_PORT=${SOAK_HTTP_PORT:-18080}
# The clip every publisher loops: small enough that 20 of them and 700 clients fit on a shared
# 2-core box (memory flatness is what the soak measures, not throughput).
SOAK_CLIP_SIZE=${SOAK_CLIP_SIZE:-640x360}
SOAK_CLIP_RATE=${SOAK_CLIP_RATE:-800k}
ONAIR_BIN=${ONAIR_BIN:-}

secs() { # 30m / 90s / 1h / 120 → seconds
	local v=$1
	case $v in
	*h) echo $((${v%h} * 3600)) ;;
	*m) echo $((${v%m} * 60)) ;;
	*s) echo "${v%s}" ;;
	*) echo "$v" ;;
	esac
}
dur=$(secs "$SOAK_DURATION")
warm=$(secs "$SOAK_WARMUP")

root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$SOAK_OUT"
rm -rf "$SOAK_OUT/data" "$SOAK_OUT"/*.csv
if [ -z "$ONAIR_BIN" ]; then
	ONAIR_BIN=$SOAK_OUT/onair
	(cd "$root" && go build -o "$ONAIR_BIN" ./cmd/onair)
fi

clip=$SOAK_OUT/clip-$SOAK_CLIP_SIZE-$SOAK_CLIP_RATE.flv
if [ ! -s "$clip" ]; then
	ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=$SOAK_CLIP_SIZE:rate=30" -f lavfi -i sine=frequency=440 \
		-c:v libx264 -preset veryfast -b:v "$SOAK_CLIP_RATE" -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
		-c:a aac -b:a 64k -t 60 -f flv "$clip"
fi

data=$SOAK_OUT/data
common=(--data "$data")
publish=() names=()
for i in $(seq 0 $((SOAK_PUBLISHERS - 1))); do
	name=$(printf 'soak%02d' "$i")
	key=$(echo "soak-password-$i" | "$ONAIR_BIN" user create "$name" "${common[@]}" --password-stdin 2>/dev/null | tail -n 1)
	publish+=("rtmp://127.0.0.1:$SOAK_RTMP_PORT/live/$key")
	names+=("$name")
done
join() { local IFS=,; echo "$*"; }

"$ONAIR_BIN" serve "${common[@]}" --rtmp-addr "127.0.0.1:$SOAK_RTMP_PORT" --http-addr "127.0.0.1:$SOAK_HTTP_PORT" \
	>"$SOAK_OUT/server.log" 2>&1 &
server=$!
sampler=
cleanup() {
	[ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
	kill "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do
	curl -fsS "http://127.0.0.1:$SOAK_HTTP_PORT/healthz" >/dev/null 2>&1 && break
	sleep 0.2
done
if ! kill -0 "$server" 2>/dev/null; then
	echo "soak: onair did not start (ports $SOAK_RTMP_PORT/$SOAK_HTTP_PORT in use?):" >&2
	tail -n 5 "$SOAK_OUT/server.log" >&2
	exit 2
fi

start=$(date +%s)
echo "t_s,rss_bytes,goroutines,clients" >"$SOAK_OUT/samples.csv"
(
	while kill -0 "$server" 2>/dev/null; do
		m=$(curl -fsS "http://127.0.0.1:$SOAK_HTTP_PORT/metrics" 2>/dev/null || true)
		rss=$(awk '$1=="process_resident_memory_bytes"{printf "%d", $2}' <<<"$m")
		gor=$(awk '$1=="go_goroutines"{printf "%d", $2}' <<<"$m")
		# The bench's last progress line: connected publishers/players/viewers (publish P/20 rtmp N/500 …).
		cl=$(tail -n 1 "$SOAK_OUT/bench.progress" 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i ~ /^(publish|rtmp|hls-ts|ll-hls)$/) { split($(i+1), a, "/"); s = s (s == "" ? "" : "+") a[1] } print s}')
		[ -n "$rss" ] && echo "$(($(date +%s) - start)),$rss,$gor,${cl:-}" >>"$SOAK_OUT/samples.csv"
		sleep "$SOAK_SAMPLE"
	done
) &
sampler=$!

bench_rc=0
"$ONAIR_BIN" bench --clip "$clip" --publish "$(join "${publish[@]}")" --names "$(join "${names[@]}")" \
	--http "http://127.0.0.1:$SOAK_HTTP_PORT" --players "$SOAK_PLAYERS" --hls "$SOAK_HLS" --llhls "$SOAK_LLHLS" \
	--duration "${dur}s" --ramp "$SOAK_RAMP" --json "$SOAK_OUT/bench.json" >"$SOAK_OUT/bench.txt" 2>"$SOAK_OUT/bench.progress" ||
	bench_rc=$?

# The summary: samples after the warm-up, against their mean.
awk -F, -v warm="$warm" -v dur="$dur" -v tol="$SOAK_TOLERANCE" -v bench_rc="$bench_rc" '
NR == 1 { next }
$1 >= warm && $1 <= dur {
	n++; r[n] = $2; g[n] = $3; rs += $2; gs += $3
	if (n == 1) c1 = $4; c2 = $4
	if (n == 1 || $2 < rmin) rmin = $2; if (n == 1 || $2 > rmax) rmax = $2
	if (n == 1 || $3 < gmin) gmin = $3; if (n == 1 || $3 > gmax) gmax = $3
}
END {
	if (n == 0) { print "no samples after the warm-up"; exit 2 }
	rm = rs / n; gm = gs / n
	rlo = (rmin - rm) / rm * 100; rhi = (rmax - rm) / rm * 100
	glo = (gmin - gm) / gm * 100; ghi = (gmax - gm) / gm * 100
	flat = (rlo >= -tol && rhi <= tol && glo >= -tol && ghi <= tol)
	printf "| metric | samples after warm-up | mean | min | max | spread vs mean |\n"
	printf "|---|---:|---:|---:|---:|---:|\n"
	printf "| RSS (MiB) | %d | %.1f | %.1f | %.1f | %+.1f %% / %+.1f %% |\n", n, rm / 1048576, rmin / 1048576, rmax / 1048576, rlo, rhi
	printf "| goroutines | %d | %.0f | %d | %d | %+.1f %% / %+.1f %% |\n", n, gm, gmin, gmax, glo, ghi
	printf "\nclients (publishers+players+TS+LL-HLS) at the first and last sample after warm-up: %s → %s\n", c1, c2
	printf "flat within ±%d %%: %s; bench exit status %d\n", tol, flat ? "yes" : "NO", bench_rc
	exit flat ? 0 : 1
}' "$SOAK_OUT/samples.csv" | tee "$SOAK_OUT/summary.md"
