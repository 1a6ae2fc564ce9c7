#!/usr/bin/env bash
# awscli's s3 commands against a live `stratus serve` (S3_URL and alice's AWS_* keys in the environment):
# mb, a 200 MiB cp (multipart, with progress), ls, sync, a download compared byte for byte, rm, rb.
set -euo pipefail
aws() { command aws --endpoint-url "$S3_URL" --region nova "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aws s3 mb s3://cli-bucket >/dev/null
echo "ok: s3 mb"
head -c $((200 << 20)) /dev/urandom > "$work/big.bin"
# Progress goes to a terminal only; --no-progress off and output kept shows awscli reported parts as they went.
aws s3 cp "$work/big.bin" s3://cli-bucket/disks/big.bin > "$work/cp.out" 2>&1
grep -q "upload: .*big.bin to s3://cli-bucket/disks/big.bin" "$work/cp.out" || { echo "FAIL: cp said $(tail -c 300 "$work/cp.out")"; exit 1; }
echo "ok: s3 cp of 200 MiB"
etag=$(aws s3api head-object --bucket cli-bucket --key disks/big.bin --query ETag --output text)
[[ $etag == *-* ]] || { echo "FAIL: a 200 MiB cp is multipart, ETag $etag"; exit 1; }
echo "ok: it was a multipart upload ($etag)"
aws s3 cp s3://cli-bucket/disks/big.bin "$work/back.bin" >/dev/null
cmp -s "$work/big.bin" "$work/back.bin" || { echo "FAIL: the download differs"; exit 1; }
echo "ok: the download is the same bytes"
mkdir -p "$work/tree/a/b"
echo one > "$work/tree/one.txt"; echo two > "$work/tree/a/two.txt"; echo three > "$work/tree/a/b/three.txt"
aws s3 sync "$work/tree" s3://cli-bucket/tree >/dev/null
listed=$(aws s3 ls s3://cli-bucket/tree/ --recursive | awk '{print $4}' | sort | tr '\n' ' ')
[[ $listed == "tree/a/b/three.txt tree/a/two.txt tree/one.txt " ]] || { echo "FAIL: sync listed '$listed'"; exit 1; }
echo "ok: s3 sync and ls --recursive"
top=$(aws s3 ls s3://cli-bucket/ | awk '{print $NF}' | tr '\n' ' ')
[[ $top == "disks/ tree/ " ]] || { echo "FAIL: ls showed '$top'"; exit 1; }
echo "ok: ls shows prefixes"
if out=$(aws s3 rb s3://cli-bucket 2>&1); then echo "FAIL: rb of a full bucket succeeded"; exit 1; fi
[[ $out == *BucketNotEmpty* ]] || { echo "FAIL: $out"; exit 1; }
echo "ok: rb of a full bucket → BucketNotEmpty"
aws s3 rm s3://cli-bucket --recursive >/dev/null
aws s3 rb s3://cli-bucket >/dev/null
echo "ok: rm --recursive, rb"
echo "awscli checks passed"
