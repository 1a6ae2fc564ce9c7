"""EC2 API under load: 100 concurrent clients against `stratus serve` (BENCHMARKS.md).

Target (issue 19, Kubernetes' API SLO): mutating calls p99 < 1 s and reads p99 < 1 s with 100
concurrent clients. The load comes from a native generator (`stratus-bench ec2-load`: one thread
and one keep-alive connection per client, SigV4 signed in Swift), so that the client is not what
is measured. Each client loops RunInstances → DescribeInstances (that id) → TerminateInstances →
DescribeInstances (the whole project) for the run's length, while the controller converges every
launch and termination into the libvirt test driver.

Usage: python3 bench/ec2_load.py --bin .build/release/stratus --load .build/release/stratus-bench
       [--clients 100] [--seconds 60] [--instances 100]
Environment: BENCH_LOG_LEVEL (serve's log level), BENCH_KEEP_LOG=FILE (serve's log).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ec2_vs_moto import Endpoint, cpu_seconds, ids_in, populate, settle, wait_for  # noqa: E402

TARGET_MS = 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/stratus")
    parser.add_argument("--load", default=".build/release/stratus-bench")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--instances", type=int, default=100, help="instances present before the run")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="stratus-bench-load-")
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
    server = subprocess.Popen([binary, "serve", "--data-dir", data, "--api-port", "0", "--ec2-port", "0", "--hypervisor", f"test://{node}",
                               "--apply", manifest, "--log-level", os.environ.get("BENCH_LOG_LEVEL", "warning")], stdout=log, stderr=log)
    try:
        url = wait_for(os.path.join(data, "serve.json"), "ec2URL")
        keys = json.loads(subprocess.check_output([binary, "credentials", "bench", "-p", "bench", "--format", "json", "--data-dir", data]))
        endpoint = Endpoint(url, keys["accessKey"], keys["secretKey"], "nova")
        status, body = endpoint.call({"Action": "DescribeImages"})
        ami = ids_in(body, b"<imageId>")[0]
        if args.instances:
            populate(endpoint, ami, args.instances)
            settle(endpoint)
        cpu_before = cpu_seconds(server.pid)
        out = subprocess.check_output([os.path.abspath(args.load), "ec2-load", url, keys["accessKey"], keys["secretKey"], ami,
                                       "--clients", str(args.clients), "--seconds", str(args.seconds)])
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait()
        if os.environ.get("BENCH_KEEP_LOG"):
            shutil.copy(os.path.join(work, "serve.log"), os.environ["BENCH_KEEP_LOG"])
        shutil.rmtree(work, ignore_errors=True)
    result = json.loads(out)
    if os.environ.get("BENCH_JSON"):
        print(json.dumps(result, indent=1))
    print(f"| {args.clients} concurrent clients for {result['seconds']:.0f} s, {args.instances} instances present | count | p50 | p99 | max |")
    print("|---|---|---|---|---|")
    for action, s in sorted(result["actions"].items()):
        if s["count"]:
            print(f"| {action} | {s['count']} | {s['p50_ms']:.0f} ms | {s['p99_ms']:.0f} ms | {s['max_ms']:.0f} ms |")
    verdicts = []
    for label, key in (("mutating (Run + Terminate)", "mutating"), ("reads (Describe)", "reads")):
        s = result[key]
        ok = s["count"] > 0 and s["p99_ms"] < TARGET_MS
        verdicts.append(ok)
        print(f"| **{label}** | {s['count']} | {s.get('p50_ms', 0):.0f} ms | **{s.get('p99_ms', 0):.0f} ms** (target < {TARGET_MS} ms: {'PASS' if ok else 'FAIL'}) | {s.get('max_ms', 0):.0f} ms |")
    print(f"\nthroughput {result['requests_per_second']:.0f} requests/s; server CPU {cpu * 1000 / max(1, result['requests']):.2f} ms per request (controller included)")
    if result["failures"]:
        print(f"failures: {result['failures']}; first: {result['first_failure']}")
        verdicts.append(False)
    print("Targets:", "PASS" if all(verdicts) else "FAIL")


if __name__ == "__main__":
    main()
