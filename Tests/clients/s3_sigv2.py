"""Signature Version 2 clients against a live `stratus serve`'s S3 API: boto 2 (header
signatures, query-string URLs) and s3cmd (--signature-v2, and SigV4 with --region).

Environment: S3_URL and alice's keys as AWS_*.
"""
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import boto
from boto.s3.connection import OrdinaryCallingFormat, S3Connection

URL = urllib.parse.urlparse(os.environ["S3_URL"])
checks = 0


def check(condition, what):
    global checks
    if not condition:
        print(f"FAIL: {what}")
        sys.exit(1)
    checks += 1
    print(f"ok: {what}")


conn = S3Connection(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], host=URL.hostname, port=URL.port,
                    is_secure=False, calling_format=OrdinaryCallingFormat())
bucket = conn.create_bucket("boto2-bucket")
check("boto2-bucket" in [b.name for b in conn.get_all_buckets()], "boto 2: create_bucket and get_all_buckets (SigV2 headers)")
key = bucket.new_key("docs/hello.txt")
key.set_metadata("owner", "alice")
key.set_contents_from_string("hello from boto 2", headers={"Content-Type": "text/plain"})
back = bucket.get_key("docs/hello.txt")
check(back.get_contents_as_string() == b"hello from boto 2" and back.get_metadata("owner") == "alice", "boto 2: set_contents / get_contents with metadata")
check([k.name for k in bucket.list(prefix="docs/")] == ["docs/hello.txt"], "boto 2: list with a prefix")
url = back.generate_url(60)
check(urllib.request.urlopen(url).read() == b"hello from boto 2", "boto 2: a SigV2 query-string URL works without keys")
expired = back.generate_url(-10)
try:
    urllib.request.urlopen(expired)
    check(False, "an expired SigV2 URL is refused")
except urllib.error.HTTPError as e:
    check(e.code == 403, "boto 2: an expired SigV2 URL is 403")
bad = S3Connection(os.environ["AWS_ACCESS_KEY_ID"], "wrong" * 8, host=URL.hostname, port=URL.port, is_secure=False, calling_format=OrdinaryCallingFormat())
try:
    bad.get_all_buckets()
    check(False, "a wrong secret is refused")
except boto.exception.S3ResponseError as e:
    check(e.status == 403 and e.error_code == "SignatureDoesNotMatch", "boto 2: a wrong secret is SignatureDoesNotMatch")
bucket.delete_key("docs/hello.txt")
conn.delete_bucket("boto2-bucket")
check("boto2-bucket" not in [b.name for b in conn.get_all_buckets()], "boto 2: delete_key and delete_bucket")

work = tempfile.mkdtemp()
source = os.path.join(work, "payload.bin")
with open(source, "wb") as f:
    f.write(os.urandom(3 << 20))
host = f"{URL.hostname}:{URL.port}"
common = ["s3cmd", "--config=/dev/null", f"--access_key={os.environ['AWS_ACCESS_KEY_ID']}", f"--secret_key={os.environ['AWS_SECRET_ACCESS_KEY']}",
          f"--host={host}", f"--host-bucket={host}", "--no-ssl", "--no-check-certificate"]
for mode, flags in [("SigV2", ["--signature-v2"]), ("SigV4", ["--region=nova"])]:
    def s3cmd(*args):
        return subprocess.run(common + flags + list(args), capture_output=True, text=True)
    name = f"s3cmd-{mode.lower()}"
    made = s3cmd("mb", f"s3://{name}")
    check(made.returncode == 0, f"s3cmd ({mode}): mb ({made.stderr.strip()[-200:]})")
    put = s3cmd("put", source, f"s3://{name}/payload.bin")
    check(put.returncode == 0, f"s3cmd ({mode}): put ({put.stderr.strip()[-200:]})")
    listed = s3cmd("ls", f"s3://{name}")
    check("payload.bin" in listed.stdout, f"s3cmd ({mode}): ls")
    target = os.path.join(work, f"back-{mode}.bin")
    got = s3cmd("get", f"s3://{name}/payload.bin", target)
    check(got.returncode == 0 and open(target, "rb").read() == open(source, "rb").read(), f"s3cmd ({mode}): get returns the same bytes")
    check(s3cmd("del", f"s3://{name}/payload.bin").returncode == 0 and s3cmd("rb", f"s3://{name}").returncode == 0, f"s3cmd ({mode}): del and rb")
print(f"{checks} checks passed")
