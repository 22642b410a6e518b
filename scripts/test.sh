#!/usr/bin/env bash
# scripts/test.sh — the one command that passes the tests, from nothing.
#
# It installs what the tests need (Debian's python3-boto3 and rsync, a pinned
# MinIO built with `go install` and cached outside the repository), starts
# MinIO on 127.0.0.1 with a temporary data directory, runs go vet and
# go test -race over every package, and stops MinIO again.
#
#   ./scripts/test.sh                 # everything
#   ./scripts/test.sh ./replicate/... # only some packages (same set-up)
#
# Environment: CI=true makes tests that need MinIO or boto3 fail instead of
# skip when those are missing. BLOCKFERRY_NO_INSTALL=1 skips the installs.
set -euo pipefail
cd "$(dirname "$0")/.."

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/blockferry
MINIO_BIN=$CACHE/bin/minio-$MINIO_VERSION

log() { printf '==> %s\n' "$*" >&2; }

need_apt=()
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import boto3' 2>/dev/null || need_apt+=(python3-boto3)
command -v rsync >/dev/null || need_apt+=(rsync)

if [ "${BLOCKFERRY_NO_INSTALL:-}" != 1 ]; then
	if [ ${#need_apt[@]} -gt 0 ]; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
			log "installing ${need_apt[*]} from Debian"
			apt-get update -qq >/dev/null
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
		else
			log "cannot install ${need_apt[*]} (not root or no apt-get); those tests will skip"
		fi
	fi
	if [ ! -x "$MINIO_BIN" ]; then
		log "building MinIO $MINIO_VERSION into $CACHE/bin (once; takes a few minutes)"
		mkdir -p "$CACHE/bin"
		tmp=$(mktemp -d)
		(cd "$tmp" && GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION")
		mv "$tmp/minio" "$MINIO_BIN"
		rm -rf "$tmp"
	fi
fi

live() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$1/minio/health/live" >/dev/null 2>&1; }

cleanup() {
	[ -n "${minio_pid:-}" ] && kill "$minio_pid" 2>/dev/null && wait "$minio_pid" 2>/dev/null
	[ -n "${minio_dir:-}" ] && rm -rf "$minio_dir"
	return 0
}
trap cleanup EXIT

if [ -x "$MINIO_BIN" ]; then
	minio_dir=$(mktemp -d)
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	export MINIO_ROOT_USER=blockferry MINIO_ROOT_PASSWORD=blockferry-secret
	"$MINIO_BIN" server --quiet --address "127.0.0.1:$port" --console-address 127.0.0.1:0 "$minio_dir/data" \
		>"$minio_dir/minio.log" 2>&1 &
	minio_pid=$!
	for _ in $(seq 1 100); do
		live "$port" && break
		sleep 0.2
	done
	if live "$port"; then
		log "MinIO on 127.0.0.1:$port"
		export BLOCKFERRY_S3_ENDPOINT="http://127.0.0.1:$port"
		export AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER AWS_SECRET_ACCESS_KEY=$MINIO_ROOT_PASSWORD AWS_REGION=us-east-1
		export BLOCKFERRY_MINIO=$MINIO_BIN
	else
		log "MinIO did not start; its log:"; cat "$minio_dir/minio.log" >&2
	fi
fi

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

log "go vet"
go vet "${pkgs[@]}"
log "go test -race"
go test -race -timeout 20m "${pkgs[@]}"

if [ $# -eq 0 ]; then
	# The hashing fallbacks: purego forces crypto/sha256 everywhere, and
	# avx512model runs the AVX-512 lane feeding through a plain-Go model of
	# the kernel, so that both are tested on CPUs without AVX-512.
	log "go test hashing with -tags purego and -tags avx512model"
	go test -tags purego ./hashing ./blockdiff
	go test -tags avx512model ./hashing
fi
