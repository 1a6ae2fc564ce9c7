#!/usr/bin/env bash
# rclone as an S3 client of a live `stratus serve` (S3_URL and alice's AWS_* keys in the environment):
# mkdir, copy (a 30 MiB file goes multipart), lsf, cat, check (rclone compares its own MD5s), delete.
set -euo pipefail
export RCLONE_CONFIG_STRATUS_TYPE=s3 RCLONE_CONFIG_STRATUS_PROVIDER=Other RCLONE_CONFIG_STRATUS_REGION=nova
export RCLONE_CONFIG_STRATUS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_STRATUS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" RCLONE_CONFIG_STRATUS_ENDPOINT="$S3_URL"
export RCLONE_CONFIG=/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rclone mkdir stratus:rclone-bucket
echo "hello from rclone" > "$work/hello.txt"
head -c $((30 << 20)) /dev/urandom > "$work/big.bin"
rclone copy "$work/hello.txt" stratus:rclone-bucket/docs/
rclone copy "$work/big.bin" stratus:rclone-bucket/
listed=$(rclone lsf -R stratus:rclone-bucket | sort | tr '\n' ' ')
[[ $listed == "big.bin docs/ docs/hello.txt " ]] || { echo "FAIL: lsf listed '$listed'"; exit 1; }
echo "ok: rclone mkdir, copy, lsf -R"
[[ $(rclone cat stratus:rclone-bucket/docs/hello.txt) == "hello from rclone" ]] || { echo "FAIL: cat"; exit 1; }
echo "ok: rclone cat"
rclone check "$work" stratus:rclone-bucket --include big.bin --download >/dev/null 2>&1 || { echo "FAIL: check --download of the 30 MiB file"; exit 1; }
echo "ok: rclone check --download: the 30 MiB object is the same bytes"
rclone purge stratus:rclone-bucket
if rclone lsf stratus:rclone-bucket >/dev/null 2>&1; then echo "FAIL: the bucket survived purge"; exit 1; fi
echo "ok: rclone purge removes the objects and the bucket"
echo "rclone checks passed"
