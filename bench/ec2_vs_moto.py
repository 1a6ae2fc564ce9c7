"""EC2 API benchmark: Stratus against moto_server, same load, same run (BENCHMARKS.md).

1. 10,000 instances present (RunInstances in batches of 500), then settled: none pending (for
   Stratus, the controller has started every domain), so what follows is measured on a steady cloud.
2. DescribeInstances latency p50/p99: all instances (5 requests: moto takes tens of seconds
   each at 10,000), and filtered by one id (200 requests; raw signed HTTP,
   so the client's XML parsing is not measured).
3. RunInstances + TerminateInstances pairs per second with 16 concurrent clients (processes),
   and the server's CPU time per pair (for Stratus: API and controller, which converges every
   launch and termination into libvirt during the run).

Usage: python3 bench/ec2_vs_moto.py --bin .build/release/stratus [--instances 10000] [--seconds 30] [--only stratus]
Environment: BENCH_LOG_LEVEL (serve's log level), BENCH_KEEP_LOG=FILE (serve's log),
BENCH_KEEP_DATA=DIR (a copy of the data directory, to inspect the event feed afterwards).
"""
import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlencode, urlparse

import hashlib
import hmac


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Endpoint:
    """A keep-alive connection that signs with SigV4 (service ec2, the server's region). The signing is
    written out here rather than done by botocore's SigV4Auth, which costs about 0.5 ms of
    client CPU per request: the 16 clients share the two cores with the server, so an expensive
    load generator would measure itself (every request is still signed and verified)."""

    def __init__(self, url, access, secret, region):
        self.url, self.access, self.secret, self.region = url, access, secret, region
        parsed = urlparse(url)
        self.host, self.port, self.path = parsed.hostname, parsed.port, parsed.path or "/"
        self.netloc = parsed.netloc
        self.connection = None
        self.keys = {}

    def signing_key(self, day):
        if day not in self.keys:
            key = ("AWS4" + self.secret).encode()
            for part in (day, self.region, "ec2", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self.keys = {day: key}
        return self.keys[day]

    def headers(self, body):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = stamp[:8]
        content_type = "application/x-www-form-urlencoded; charset=utf-8"
        payload = hashlib.sha256(body.encode()).hexdigest()
        signed = "content-type;host;x-amz-date"
        canonical = f"POST\n{self.path}\n\ncontent-type:{content_type}\nhost:{self.netloc}\nx-amz-date:{stamp}\n\n{signed}\n{payload}"
        scope = f"{day}/{self.region}/ec2/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self.signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return {"Content-Type": content_type, "X-Amz-Date": stamp,
                "Authorization": f"AWS4-HMAC-SHA256 Credential={self.access}/{scope}, SignedHeaders={signed}, Signature={signature}"}

    def call(self, params):
        """One signed POST; returns (status, body bytes)."""
        body = urlencode(dict(params, Version="2016-11-15"))
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=300)
        self.connection.request("POST", self.path, body=body, headers=self.headers(body))
        response = self.connection.getresponse()
        return response.status, response.read()


def ids_in(body, tag=b"<instanceId>"):
    out, start = [], 0
    while (index := body.find(tag, start)) >= 0:
        end = body.find(b"<", index + len(tag))
        out.append(body[index + len(tag):end].decode())
        start = end
    return out


def populate(endpoint, ami, count):
    made = []
    while len(made) < count:
        batch = min(500, count - len(made))
        status, body = endpoint.call({"Action": "RunInstances", "ImageId": ami, "MinCount": batch, "MaxCount": batch, "InstanceType": "m1.tiny" if "moto" not in endpoint.url else "t2.micro"})
        if status != 200:
            raise SystemExit(f"RunInstances failed: {status} {body[:300]}")
        made += ids_in(body)
    return made


def settle(endpoint, timeout=600):
    """Waits until no instance is pending (Stratus: the controller has defined and started every
    domain), so the measurements see a settled cloud of N instances, not a controller backlog."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        status, body = endpoint.call({"Action": "DescribeInstances", "Filter.1.Name": "instance-state-name", "Filter.1.Value.1": "pending"})
        if status == 200 and not ids_in(body):
            return time.perf_counter() - start
        time.sleep(1)
    raise SystemExit("instances still pending after %d s" % timeout)


def latencies(endpoint, params, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        status, body = endpoint.call(params)
        times.append((time.perf_counter() - start) * 1000)
        if status != 200:
            raise SystemExit(f"{params['Action']} failed: {status} {body[:300]}")
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))], len(body)


def churn(args):
    url, access, secret, region, ami, seconds, instance_type = args
    endpoint = Endpoint(url, access, secret, region)
    deadline, pairs, cpu_start = time.time() + seconds, 0, time.process_time()
    while time.time() < deadline:
        status, body = endpoint.call({"Action": "RunInstances", "ImageId": ami, "MinCount": 1, "MaxCount": 1, "InstanceType": instance_type})
        if status != 200:
            return -1, body[:300].decode(errors="replace")
        status, body = endpoint.call({"Action": "TerminateInstances", "InstanceId.1": ids_in(body)[0]})
        if status != 200:
            return -1, body[:300].decode(errors="replace")
        pairs += 1
    return pairs, "", time.process_time() - cpu_start


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name, endpoint, ami, instances, seconds, instance_type, pid, clients=16):
    start = time.perf_counter()
    made = populate(endpoint, ami, instances)
    populate_s = time.perf_counter() - start
    settle_s = settle(endpoint)
    all_p50, all_p99, size = latencies(endpoint, {"Action": "DescribeInstances"}, 5)
    one_p50, one_p99, _ = latencies(endpoint, {"Action": "DescribeInstances", "InstanceId.1": made[len(made) // 2]}, 200)
    with multiprocessing.Pool(clients) as pool:
        cpu_before = cpu_seconds(pid)
        results = pool.map(churn, [(endpoint.url, endpoint.access, endpoint.secret, endpoint.region, ami, seconds, instance_type)] * clients)
        cpu = cpu_seconds(pid) - cpu_before
    failures = [r[1] for r in results if r[0] < 0]
    client_cpu = sum(r[2] for r in results if r[0] >= 0)
    if failures:
        raise SystemExit(f"{name}: churn failed: {failures[0]}")
    pairs = sum(r[0] for r in results)
    return {"name": name, "populate_s": populate_s, "settle_s": settle_s, "all_p50": all_p50, "all_p99": all_p99, "all_bytes": size,
            "one_p50": one_p50, "one_p99": one_p99, "pairs_per_s": pairs / seconds, "cpu_ms_per_pair": cpu * 1000 / max(1, pairs),
            "client_cpu_ms_per_pair": client_cpu * 1000 / max(1, pairs)}


def wait_for(path, key, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            info = json.load(open(path))
            if key in info:
                return info[key]
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"{path} has no {key}")


@contextlib.contextmanager
def stratus_server(binary):
    """A `stratus serve` on a private test node of 1024 cores and 64 GiB, with a project `bench`
    of large quotas and one image; yields (endpoint, image id, server pid). Also used by
    bench/ec2_load.py."""
    work = tempfile.mkdtemp(prefix="stratus-bench-ec2-")
    node = os.path.join(work, "node.xml")
    with open(node, "w") as f:
        f.write("<node><cpu><mhz>2000</mhz><model>bench</model><nodes>1</nodes><sockets>1</sockets><cores>1024</cores><threads>1</threads></cpu><memory>%d</memory></node>" % (64 * 1024 * 1024 * 1024))
    manifest = os.path.join(work, "bench.yaml")
    with open(manifest, "w") as f:
        f.write("apiVersion: stratus/v1\nkind: User\nmetadata: {name: bench}\nspec: {projects: [{project: bench, roles: [sysadmin]}]}\n---\n"
                "apiVersion: stratus/v1\nkind: Project\nmetadata: {name: bench}\nspec: {manager: bench, quotas: {instances: 100000, cores: 1000000, ram: 1000000000}}\n---\n"
                "apiVersion: stratus/v1\nkind: Image\nmetadata: {name: img, project: bench}\nspec: {source: /var/lib/stratus/images/img.qcow2}\n")
    data = os.path.join(work, "data")
    log = open(os.path.join(work, "serve.log"), "w")
    server = subprocess.Popen([binary, "serve", "--data-dir", data, "--api-port", "0", "--ec2-port", "0", "--s3-port", "0", "--hypervisor", f"test://{node}",
                               "--apply", manifest, "--log-level", os.environ.get("BENCH_LOG_LEVEL", "warning")], stdout=log, stderr=log)
    try:
        url = wait_for(os.path.join(data, "serve.json"), "ec2URL")
        keys = json.loads(subprocess.check_output([binary, "credentials", "bench", "-p", "bench", "--format", "json", "--data-dir", data]))
        endpoint = Endpoint(url, keys["accessKey"], keys["secretKey"], "nova")  # Stratus refuses other regions
        status, body = endpoint.call({"Action": "DescribeImages"})
        yield endpoint, ids_in(body, b"<imageId>")[0], server.pid
    finally:
        server.terminate()
        server.wait()
        if os.environ.get("BENCH_KEEP_LOG"):
            shutil.copy(os.path.join(work, "serve.log"), os.environ["BENCH_KEEP_LOG"])
        if os.environ.get("BENCH_KEEP_DATA"):
            shutil.copytree(data, os.environ["BENCH_KEEP_DATA"], dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def stratus(binary, instances, seconds):
    with stratus_server(binary) as (endpoint, ami, pid):
        return measure("Stratus", endpoint, ami, instances, seconds, "m1.tiny", pid)


def moto_server(instances, seconds):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        endpoint = Endpoint(f"http://127.0.0.1:{port}/", "AKIAMOTOBENCH0000000", "secret", "us-east-1")
        status, body = endpoint.call({"Action": "DescribeImages", "Owner.1": "amazon"})
        ami = ids_in(body, b"<imageId>")[0]
        return measure("moto_server", endpoint, ami, instances, seconds, "t2.micro", server.pid)
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/stratus")
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--only", choices=["stratus"], help="measure Stratus alone (a probe while tuning; the report needs both)")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(stratus(os.path.abspath(args.bin), args.instances, args.seconds), indent=1))
        return
    import moto
    results = [stratus(os.path.abspath(args.bin), args.instances, args.seconds), moto_server(args.instances, args.seconds)]
    s, m = results
    print(f"| measurement ({args.instances} instances present; 16 concurrent clients for {args.seconds} s) | Stratus | moto_server {moto.__version__} | ratio |")
    print("|---|---|---|---|")
    print(f"| populate: RunInstances in batches of 500 | {s['populate_s']:.1f} s | {m['populate_s']:.1f} s | {m['populate_s'] / s['populate_s']:.1f}× |")
    print(f"| then until none is pending | {s['settle_s']:.1f} s | {m['settle_s']:.1f} s | |")
    print(f"| DescribeInstances, all ({s['all_bytes'] // 1024} KB) p50 / p99 | {s['all_p50']:.0f} / {s['all_p99']:.0f} ms | {m['all_p50']:.0f} / {m['all_p99']:.0f} ms | {m['all_p50'] / s['all_p50']:.1f}× |")
    print(f"| DescribeInstances, one id p50 / p99 | {s['one_p50']:.1f} / {s['one_p99']:.1f} ms | {m['one_p50']:.1f} / {m['one_p99']:.1f} ms | {m['one_p50'] / s['one_p50']:.1f}× |")
    print(f"| RunInstances + TerminateInstances pairs/s | {s['pairs_per_s']:.0f} | {m['pairs_per_s']:.1f} | {s['pairs_per_s'] / m['pairs_per_s']:.1f}× |")
    print(f"| server CPU per pair (controller included for Stratus) | {s['cpu_ms_per_pair']:.2f} ms | {m['cpu_ms_per_pair']:.1f} ms | {m['cpu_ms_per_pair'] / s['cpu_ms_per_pair']:.1f}× |")
    print(f"| client CPU per pair (16 processes, same code for both) | {s['client_cpu_ms_per_pair']:.2f} ms | {m['client_cpu_ms_per_pair']:.2f} ms | |")


if __name__ == "__main__":
    main()
