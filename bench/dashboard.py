#!/usr/bin/env python3
"""Benchmark: the dashboard and /metrics with 10,000 instances (issue 18).

Applies one project of N instances (one image that is never available, so they stay Pending
and the controller settles after one look at each), starts `stratus serve` (libvirt's test
driver), signs in to the dashboard and measures, 20 times each after the controller settled:
  - the overview page of the project (quota table, health bar of every resource);
  - the first page of its instance list (50 of N, counted and paged by SQLite);
  - GET /metrics (the census of every resource by kind, phase and Ready included).
Then the live feed: a browser-like SSE client follows the project's events while a writer
changes the labels of 50 instances every 0.1 s (500 changes/s, one signed apply each) for 10 s;
reports the changes made and delivered per second and how long after its write each arrived.
Prints a Markdown table and each target beside its figure (--strict: exit 1 when one is missed).
"""
import argparse
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials


def manifest(n, revision=None, only=None):
    docs = [
        "apiVersion: stratus/v1\nkind: User\nmetadata: {name: owner}\nspec: {projects: [{project: bench, roles: [sysadmin]}]}\n",
        f"apiVersion: stratus/v1\nkind: Project\nmetadata: {{name: bench}}\nspec: {{manager: owner, quotas: {{instances: {n * 2}, cores: {n * 4}, ram: {n * 4096}}}}}\n",
        "apiVersion: stratus/v1\nkind: Image\nmetadata: {name: debian, project: bench}\nspec: {source: /nonexistent/debian-12.qcow2}\n",
    ] if only is None else []
    for i in (range(n) if only is None else only):
        label = f", rev: \"{revision}\"" if revision is not None else ""
        docs.append(f"apiVersion: stratus/v1\nkind: Instance\nmetadata:\n  name: vm-{i:05d}\n  project: bench\n  labels: {{tier: web{label}}}\n"
                    "spec: {image: debian, instanceType: m1.tiny}\n")
    return "---\n".join(docs)


def timed(fetch, runs=20):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fetch()
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release/stratus")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=500, help="changes per second the writer makes")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="stratus-dashboard-bench-")
    data = os.path.join(work, "data")
    with open(os.path.join(work, "bench.yaml"), "w") as f:
        f.write(manifest(args.instances))
    subprocess.run([binary, "apply", "-f", os.path.join(work, "bench.yaml"), "--data-dir", data], check=True, capture_output=True)
    log = open(os.path.join(work, "serve.log"), "w")
    serve = subprocess.Popen([binary, "serve", "--data-dir", data, "--hypervisor", "test", "--node-capacity", "cpus=100000,memory=100000Gi",
                              "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--log-level", "error"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        info = {}
        while time.monotonic() < deadline and "apiURL" not in info:
            try:
                info = json.load(open(os.path.join(data, "serve.json")))
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        api = info["apiURL"]
        keys = dict(line[7:].split("=", 1) for line in subprocess.run([binary, "credentials", "admin", "--data-dir", data], check=True, capture_output=True, text=True).stdout.splitlines() if line.startswith("export "))
        access, secret = keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"]

        # Sign in as a browser does; the session cookie is all the pages need.
        body = urllib.parse.urlencode({"accessKey": access, "secretKey": secret, "next": "/ui"}).encode()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        try:
            urllib.request.build_opener(NoRedirect).open(urllib.request.Request(api + "/ui/login", data=body))
        except urllib.error.HTTPError as answer:
            cookie = answer.headers["Set-Cookie"].split(";")[0]

        def get(path, headers=None):
            with urllib.request.urlopen(urllib.request.Request(api + path, headers=headers or {"Cookie": cookie})) as response:
                payload = response.read()
                assert response.status == 200, (path, response.status)
                return payload

        # The controller looks at every instance once at start (ImageUnavailable), then waits.
        def reconciles():
            return sum(float(line.rsplit(" ", 1)[1]) for line in get("/metrics", {}).decode().splitlines() if line.startswith("stratus_reconciles_total{"))
        settle = time.monotonic()
        last, stable = -1.0, 0
        while stable < 3 and time.monotonic() - settle < 300:
            now = reconciles()
            stable = stable + 1 if now - last < 50 else 0
            last = now
            time.sleep(1)
        settled = time.monotonic() - settle

        overview = timed(lambda: get("/ui?project=bench"))
        page = get("/ui/resources?kind=Instance&project=bench")
        assert f"of {args.instances}".encode() in page, page[:2000]
        listing = timed(lambda: get("/ui/resources?kind=Instance&project=bench"))
        metrics = timed(lambda: get("/metrics", {}))

        # The live feed at --rate changes a second.
        credentials = botocore.credentials.Credentials(access, secret)
        sent = {}
        received = {}
        stop = threading.Event()

        def follow():
            url = urllib.parse.urlparse(api)
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            connection.request("GET", "/ui/events?project=bench&kind=Instance", headers={"Cookie": cookie, "Accept": "text/event-stream"})
            response = connection.getresponse()
            data = ""
            while not stop.is_set():
                line = response.fp.readline().decode()
                if not line:
                    break
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    # Each instance is changed once in the run (100 batches of 50 of 10,000): its
                    # first Updated event is that change.
                    if event["reason"] == "Updated" and event["name"] not in received:
                        received[event["name"]] = time.monotonic()
        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        time.sleep(1)
        batch = max(1, args.rate // 10)
        started = time.monotonic()
        revision = 0
        while time.monotonic() - started < args.seconds:
            revision += 1
            first = (revision * batch) % args.instances
            names = range(first, min(first + batch, args.instances))
            text = manifest(args.instances, revision=revision, only=names)
            plan = json.dumps({"sources": [{"name": f"rev-{revision}.yaml", "text": text}], "project": "bench", "applySet": "default",
                               "prune": False, "allowMassDelete": False, "commit": True, "useParseCache": False}).encode()
            request = botocore.awsrequest.AWSRequest(method="POST", url=api + "/v1/plan", data=plan, headers={"Content-Type": "application/json"})
            botocore.auth.SigV4Auth(credentials, "stratus", "nova").add_auth(request)
            with urllib.request.urlopen(urllib.request.Request(request.url, data=plan, headers=dict(request.headers))) as response:
                response.read()
            done = time.monotonic()
            for i in names:
                sent[f"vm-{i:05d}"] = done
            pause = started + revision * 0.1 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        writing = time.monotonic() - started
        time.sleep(3)
        stop.set()
        lags = []
        for name, at in sent.items():
            arrived = received.get(name)
            if arrived is not None:
                lags.append(max(0.0, arrived - at))
        delivered = len(lags)
        lags.sort()
        made_rate = len(sent) / writing
        p95 = lags[int(len(lags) * 0.95) - 1] if lags else float("inf")
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    print(f"## Dashboard and /metrics, {args.instances:,} instances\n")
    print(f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}. Command: python3 bench/dashboard.py --bin {args.bin}. "
          f"The controller settled {settled:.0f} s after start; 20 requests each, median (95th percentile).\n")
    print("| measurement | median | p95 | target |")
    print("|---|---|---|---|")
    rows = [("overview page", overview, 0.200), ("first page of the instance list", listing, 0.200), ("GET /metrics", metrics, 0.050)]
    met = True
    for name, (median, p95_value), target in rows:
        ok = median < target
        met &= ok
        print(f"| {name} | {median * 1000:.1f} ms | {p95_value * 1000:.1f} ms | < {target * 1000:.0f} ms {'PASS' if ok else 'FAIL'} |")
    keeps_up = delivered == len(sent) and made_rate >= args.rate * 0.95 and p95 < 1.0
    met &= keeps_up
    print(f"| live feed: {len(sent)} changes in {writing:.1f} s ({made_rate:.0f}/s made) | {delivered} delivered, "
          f"lag median {statistics.median(lags) * 1000 if lags else 0:.0f} ms | lag p95 {p95 * 1000:.0f} ms | {args.rate}/s, every change, p95 < 1 s {'PASS' if keeps_up else 'FAIL'} |")
    if args.strict and not met:
        sys.exit(1)


if __name__ == "__main__":
    main()
