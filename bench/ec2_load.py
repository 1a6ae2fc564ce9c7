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
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ec2_vs_moto import cpu_seconds, populate, settle, stratus_server  # noqa: E402

TARGET_MS = 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/stratus")
    parser.add_argument("--load", default=".build/release/stratus-bench")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--instances", type=int, default=100, help="instances present before the run")
    args = parser.parse_args()
    with stratus_server(os.path.abspath(args.bin)) as (endpoint, ami, pid):
        if args.instances:
            populate(endpoint, ami, args.instances)
            settle(endpoint)
        cpu_before = cpu_seconds(pid)
        out = subprocess.check_output([os.path.abspath(args.load), "ec2-load", endpoint.url, endpoint.access, endpoint.secret, ami,
                                       "--clients", str(args.clients), "--seconds", str(args.seconds)])
        cpu = cpu_seconds(pid) - cpu_before
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
