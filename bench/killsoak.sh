#!/usr/bin/env bash
# bench/killsoak.sh — the long kill -9 soak of resumable replication.
#
# Part 1 runs the replicate package's own soak (TestKillSoak in
# replicate/soak_test.go: an 8 MiB copy in a child process, SIGKILLed at a
# random moment, rerun from its journal, compared byte for byte) with many
# trials. Part 2 does the same end to end with the CLI on a genpair pair:
# `blockferry copy --journal J v2.img target.img` is killed with SIGKILL
# after a random delay, run again with the same arguments, and the target
# must then equal v2.img (cmp); odd trials use --base v1.bfm, even ones the
# live target.
#
#   bench/killsoak.sh                      # 500 engine trials, 50 CLI trials on 256 MiB
#   TRIALS=2000 CLI_TRIALS=200 CLI_SIZE=1GiB bench/killsoak.sh
#   TRIALS=0 bench/killsoak.sh             # CLI part only (CLI_TRIALS=0: engine only)
#
# Environment: TRIALS (engine trials, default 500), CLI_TRIALS (default 50),
# CLI_SIZE (pair size, default 256MiB), MAX_DELAY_MS (longest kill delay for
# the CLI, default: 1.2 x the time of one uninterrupted copy), SEED (genpair
# and delay seed, default 1), WORK (scratch directory, default a new temp
# directory, removed at the end). Exit status is non-zero on the first
# failing trial, which is kept in WORK for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

TRIALS=${TRIALS:-500}
CLI_TRIALS=${CLI_TRIALS:-50}
CLI_SIZE=${CLI_SIZE:-256MiB}
SEED=${SEED:-1}
log() { printf '==> %s\n' "$*" >&2; }

if [ "$TRIALS" -gt 0 ]; then
	log "engine soak: BLOCKFERRY_SOAK_TRIALS=$TRIALS go test ./replicate -run '^TestKillSoak$'"
	BLOCKFERRY_SOAK_TRIALS=$TRIALS go test -count=1 -timeout 120m -run '^TestKillSoak$' -v ./replicate | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|trials:|trial [0-9]+:'
fi

[ "$CLI_TRIALS" -gt 0 ] || exit 0

own_work=0
if [ -z "${WORK:-}" ]; then
	WORK=$(mktemp -d)
	own_work=1
fi
failed=0
cleanup() { if [ "$own_work" = 1 ] && [ "$failed" = 0 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

bf=$WORK/blockferry
log "go build ./cmd/blockferry ./bench/cmd/genpair into $WORK"
go build -o "$bf" ./cmd/blockferry
go build -o "$WORK/genpair" ./bench/cmd/genpair
"$WORK/genpair" -size "$CLI_SIZE" -zero 0.30 -dup 0.10 -change 0.30 -seed "$SEED" -out "$WORK/pair" >&2
"$bf" hash --quiet -o "$WORK/pair/v1.bfm" "$WORK/pair/v1.img" >/dev/null

target=$WORK/target.img
reset() {
	rm -rf "$WORK/state" "$WORK/copy.journal"
	mkdir -p "$WORK/state"
	cp --sparse=always --reflink=never "$WORK/pair/v1.img" "$target"
}
args() { # trial -> copy arguments
	local a=(copy --quiet --journal "$WORK/copy.journal" --state-dir "$WORK/state")
	if [ $(($1 % 2)) = 1 ]; then a+=(--base "$WORK/pair/v1.bfm"); fi
	a+=("$WORK/pair/v2.img" "$target")
	printf '%s\n' "${a[@]}"
}

if [ -z "${MAX_DELAY_MS:-}" ]; then
	reset
	t0=$(date +%s%N)
	mapfile -t a < <(args 0)
	"$bf" "${a[@]}" >/dev/null
	t1=$(date +%s%N)
	MAX_DELAY_MS=$(( (t1 - t0) / 1000000 * 12 / 10 + 1 ))
fi
log "CLI soak: $CLI_TRIALS trials on a $CLI_SIZE pair, kill -9 after 0..${MAX_DELAY_MS} ms"

RANDOM=$SEED
killed=0
resumed=0
for trial in $(seq 1 "$CLI_TRIALS"); do
	reset
	mapfile -t a < <(args "$trial")
	delay=$(( (RANDOM * 32768 + RANDOM) % MAX_DELAY_MS ))
	"$bf" "${a[@]}" >/dev/null 2>"$WORK/first.err" &
	pid=$!
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	kill -9 "$pid" 2>/dev/null || true
	status=0
	{ wait "$pid"; } 2>/dev/null || status=$?
	if [ "$status" = 137 ]; then
		killed=$((killed + 1))
	elif [ "$status" != 0 ]; then
		failed=1
		log "trial $trial: first run failed on its own (status $status):"; cat "$WORK/first.err" >&2
		exit 1
	fi
	if ! "$bf" "${a[0]}" --json "${a[@]:1}" >"$WORK/second.json" 2>"$WORK/second.err"; then
		failed=1
		log "trial $trial (kill after ${delay} ms): rerun failed:"; cat "$WORK/second.err" >&2
		exit 1
	fi
	if ! cmp -s "$target" "$WORK/pair/v2.img"; then
		failed=1
		log "trial $trial (kill after ${delay} ms, args ${a[*]}): target differs from v2.img; kept in $WORK"
		cmp "$target" "$WORK/pair/v2.img" >&2 || true
		exit 1
	fi
	n=$(grep -oE '"resumed_blocks": *[0-9]+' "$WORK/second.json" | grep -oE '[0-9]+$' || echo 0)
	[ "${n:-0}" -gt 0 ] && resumed=$((resumed + 1))
	if [ -e "$WORK/copy.journal" ]; then
		failed=1
		log "trial $trial: journal left after a successful rerun"
		exit 1
	fi
done
log "CLI soak passed: $CLI_TRIALS trials, $killed killed mid-run, $resumed reruns resumed blocks from the journal"
