#!/usr/bin/env bash
# onair against nginx-rtmp, back to back on this machine, with the shared harness
# (../shared/bench, see its README) and idle-player memory (internal/loadgen/cmd/idlerss).
# See docs/performance.md. Run from the onair checkout:
#
#   scripts/bench-vs-nginx.sh                 # ROUNDS=2 rounds of: onair, nginx (order alternates)
#   ROUNDS=3 CASES="s1 s2" S1_N="200 500 1000" scripts/bench-vs-nginx.sh
#
# Env: BENCH (/work/shared/bench), ROUNDS (2), CASES ("s1 s2 s5"), S1_N ("200 500 1000"),
# S2_P (20), DUR (20), WARMUP (5), IDLE_N (1000 idle players; 0 skips), RECORDING (0: the
# onair users do not record, like nginx-rtmp; 1: onair's default, recording on), SETTLE (15s: wait
# after the idle players connected before the second RSS sample),
# OUT (/tmp/onair-vs-nginx), HLS_VIEWERS (20: after the harness cases, each round also runs
# S2_P publishers with one MPEG-TS HLS viewer per stream against both servers with
# `onair bench`, so that every HLS muxer runs; 0 skips), THUMBS (0: onair's live thumbnails
# off, as nginx-rtmp makes none; 1: on, onair's default), HLS_WARMUP (30: seconds before the
# HLS line measures, so that both servers are past their first playlist window: onair reuses
# the buffers of segments that left it). CASES=none runs only the HLS and
# idle-memory lines. Ports 1935 and 8080 must be free.
set -uo pipefail
cd "$(dirname "$0")/.."
BENCH="${BENCH:-/work/shared/bench}"
ROUNDS="${ROUNDS:-2}"
CASES="${CASES:-s1 s2 s5}"
IDLE_N="${IDLE_N:-1000}"
SETTLE="${SETTLE:-15s}"
RECORDING="${RECORDING:-0}"
OUT="${OUT:-/tmp/onair-vs-nginx}"
HLS_VIEWERS="${HLS_VIEWERS:-20}"
THUMBS="${THUMBS:-0}"
[ "$THUMBS" = 1 ] || export ONAIR_THUMBNAIL_INTERVAL=0
HLS_WARMUP="${HLS_WARMUP:-30}"
export DUR="${DUR:-20}" WARMUP="${WARMUP:-5}" S1_N="${S1_N:-200 500 1000}" S2_P="${S2_P:-20}" S5_J="${S5_J:-10}"
mkdir -p "$OUT"
go build -o bin/onair ./cmd/onair || exit 1
go build -o "$OUT/idlerss" ./internal/loadgen/cmd/idlerss || exit 1
if [ ! -s /tmp/bench-media/clip.flv ]; then
  # The harness's clip (its run.sh makes the same one when a harness case runs first).
  mkdir -p /tmp/bench-media
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 \
    -c:v libx264 -preset veryfast -b:v 2500k -maxrate 2500k -bufsize 5000k \
    -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
    -c:a aac -b:a 128k -ar 48000 -ac 2 -f flv /tmp/bench-media/clip.flv.tmp &&
    mv /tmp/bench-media/clip.flv.tmp /tmp/bench-media/clip.flv || exit 1
fi
ONAIR="$PWD/bin/onair"
RUN=/tmp/bench-run
# The user's key is printed last; with RECORDING=0 the channel's recording is switched off.
KEY_CMD="sh -c 'k=\$(echo bench-password-123 | $ONAIR user create \$0 --data $RUN/onair --password-stdin | tail -n 1); \
[ $RECORDING = 1 ] || sqlite3 $RUN/onair/onair.db \"UPDATE channels SET recording = 0\"; echo \$k'"

onair() { RESULTS_ROOT="$OUT/r$1" ONAIR_BIN="$ONAIR" KEY_CMD="$KEY_CMD" bash "$BENCH/run.sh" onair $CASES; }
nginx() { RESULTS_ROOT="$OUT/r$1" bash "$BENCH/run.sh" nginx $CASES; }

# idle_rss SERVER: memory per idle RTMP player, fresh server.
idle_rss() {
  local srv=$1 pid play pub
  rm -rf "$RUN/nginx" "$RUN/onair" && mkdir -p "$RUN/nginx" "$RUN/nginx-hls" "$RUN/onair"
  if [ "$srv" = onair ]; then
    setsid "$ONAIR" serve --data "$RUN/onair" --rtmp-addr 127.0.0.1:1935 --http-addr 127.0.0.1:8080 \
      --log-level warn >"$OUT/idle-onair.log" 2>&1 </dev/null & pid=$!
    sleep 2
    local key; key=$(echo bench-password-123 | "$ONAIR" user create idle --data "$RUN/onair" --password-stdin | tail -n 1)
    sqlite3 "$RUN/onair/onair.db" "UPDATE channels SET recording = 0"
    pub="rtmp://127.0.0.1:1935/live/$key"
  else
    setsid nginx -p "$RUN/nginx/" -c "$BENCH/servers/nginx.conf" >"$OUT/idle-nginx.log" 2>&1 </dev/null & pid=$!
    sleep 2
    pub="rtmp://127.0.0.1:1935/live/idle"
  fi
  play="rtmp://127.0.0.1:1935/live/idle"
  echo "$srv idle KB/player: $(timeout 300 "$OUT/idlerss" -pid "$pid" -clip /tmp/bench-media/clip.flv \
    -publish "$pub" -play "$play" -n "$IDLE_N" -settle "$SETTLE" 2>&1 | tail -n 1)" | tee -a "$OUT/idle.txt"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null; sleep 1
}

# tree_ticks PID: CPU ticks (utime+stime, and those of reaped children) of PID and its descendants.
tree_ticks() {
  local t c
  t=$(awk '{print $14+$15+$16+$17}' "/proc/$1/stat" 2>/dev/null || echo 0)
  for c in $(pgrep -P "$1"); do t=$((t + $(tree_ticks "$c"))); done
  echo "$t"
}

# hls_forced SERVER ROUND: S2_P publishers and one MPEG-TS HLS viewer per stream (every muxer
# runs and its segments are served), fresh server; server CPU (tree, 100 = one core) over DUR
# after HLS_WARMUP, from /proc.
hls_forced() {
  local srv=$1 r=$2 pid pubs="" names i k t0 t1 bp hz
  hz=$(getconf CLK_TCK)
  rm -rf "$RUN/nginx" "$RUN/nginx-hls" "$RUN/onair" && mkdir -p "$RUN/nginx" "$RUN/nginx-hls" "$RUN/onair"
  if [ "$srv" = onair ]; then
    setsid "$ONAIR" serve --data "$RUN/onair" --rtmp-addr 127.0.0.1:1935 --http-addr 127.0.0.1:8080 \
      --log-level warn >"$OUT/hlsf-onair-$r.log" 2>&1 </dev/null & pid=$!
    sleep 2
    for i in $(seq 0 $((S2_P - 1))); do
      k=$(echo bench-password-123 | "$ONAIR" user create "hlsf$i" --data "$RUN/onair" --password-stdin | tail -n 1)
      pubs="$pubs,rtmp://127.0.0.1:1935/live/$k"
    done
    [ "$RECORDING" = 1 ] || sqlite3 "$RUN/onair/onair.db" "UPDATE channels SET recording = 0"
    names='hlsf{i}'; set -- --ts-playlist '/hls/{name}/ts/index.m3u8'
  else
    setsid nginx -p "$RUN/nginx/" -c "$BENCH/servers/nginx.conf" >"$OUT/hlsf-nginx-$r.log" 2>&1 </dev/null & pid=$!
    sleep 2
    for i in $(seq 0 $((S2_P - 1))); do pubs="$pubs,rtmp://127.0.0.1:1935/live/hlsf$i"; done
    names='hlsf{i}'; set -- --ts-playlist '/hls/{name}.m3u8'
  fi
  timeout 300 "$ONAIR" bench --clip /tmp/bench-media/clip.flv --publish "${pubs#,}" --names "$names" "$@" \
    --hls "$HLS_VIEWERS" --duration $((HLS_WARMUP + DUR + 10))s --json "$OUT/hlsf-$srv-$r.json" \
    >"$OUT/hlsf-$srv-$r.txt" 2>&1 & bp=$!
  sleep "$HLS_WARMUP"
  t0=$(tree_ticks "$pid"); sleep "$DUR"; t1=$(tree_ticks "$pid")
  wait "$bp"
  echo "round $r $srv: $S2_P publishers, $HLS_VIEWERS TS viewers: server CPU $(echo "scale=1; 100 * ($t1 - $t0) / $hz / $DUR" | bc) %," \
    "viewers kept up: $(awk '$1 == "hls-ts" {print $3 "/" $2}' "$OUT/hlsf-$srv-$r.txt")" | tee -a "$OUT/hls-forced.txt"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null; sleep 1
}

rm -f "$OUT/hls-forced.txt"
for r in $(seq 1 "$ROUNDS"); do
  if [ "$CASES" != none ]; then
    if [ $((r % 2)) = 1 ]; then onair "$r"; nginx "$r"; else nginx "$r"; onair "$r"; fi
  fi
  if [ "$HLS_VIEWERS" -gt 0 ]; then
    if [ $((r % 2)) = 1 ]; then hls_forced onair "$r"; hls_forced nginx "$r"; else hls_forced nginx "$r"; hls_forced onair "$r"; fi
  fi
  if [ "$IDLE_N" -gt 0 ]; then idle_rss onair; idle_rss nginx; fi
done
[ "$CASES" = none ] || for r in $(seq 1 "$ROUNDS"); do
  echo "## round $r"
  /tmp/bench-bin/loadgen report "$OUT/r$r"/nginx-* "$OUT/r$r"/onair-*
done | tee "$OUT/report.md"
[ -f "$OUT/hls-forced.txt" ] && cat "$OUT/hls-forced.txt"
[ -f "$OUT/idle.txt" ] && cat "$OUT/idle.txt"
