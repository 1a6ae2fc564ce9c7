#!/usr/bin/env python3
"""Benchmark: whole-process `stratus diff` (no change), `apply` from empty, and `apply` of a 1% change.

For N in (1,000, 10,000, 100,000) resources of mixed kinds in YAML files, runs each
measurement 5 times on a fresh copy of the state and reports the median wall time.
Also measures a no-change diff of one file of 10,000 SecurityGroups (--single-file; 0 skips it).
Writes a Markdown table to stdout (and bench/out/apply_diff.md) for BENCHMARKS.md, then each
target of the issue next to its figure and whether it is met (--strict: exit 1 when one is not).
"""
import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PER_PROJECT = 100  # resources per project: 1 user, 1 project, 1 key pair, 1 network, 2 groups, 1 image, 70 instances, 18 volumes, 5 addresses
TYPES = ["m1.tiny", "m1.small", "m1.medium", "m1.large"]


def project_docs(p, change):
    name = f"p{p:05d}"
    docs = [
        f"apiVersion: stratus/v1\nkind: User\nmetadata: {{name: u{p:05d}}}\nspec:\n  email: u{p}@example.org\n  projects:\n  - project: {name}\n    roles: [sysadmin, netadmin]\n",
        f"apiVersion: stratus/v1\nkind: Project\nmetadata: {{name: {name}}}\nspec: {{manager: u{p:05d}, description: bench project {p}, quotas: {{instances: 100, cores: 1000, ram: 1000000, volumes: 100, securityGroups: 1000}}}}\n",
        f"apiVersion: stratus/v1\nkind: KeyPair\nmetadata: {{name: deploy, project: {name}}}\nspec: {{publicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k bench}}\n",
        f"apiVersion: stratus/v1\nkind: Network\nmetadata: {{name: private, project: {name}}}\nspec: {{cidr: 10.{p // 256 % 256}.{p % 256}.0/24}}\n",
        f"apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {{name: web, project: {name}}}\nspec:\n  ingress:\n  - {{protocol: tcp, fromPort: 80, toPort: 80}}\n  - {{protocol: tcp, fromPort: 22, toPort: 22}}\n",
        f"apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {{name: db, project: {name}}}\nspec:\n  ingress:\n  - {{protocol: tcp, fromPort: 5432, toPort: 5432, sourceGroup: web}}\n",
        f"apiVersion: stratus/v1\nkind: Image\nmetadata: {{name: debian, project: {name}}}\nspec: {{source: /images/debian-12.qcow2}}\n",
    ]
    for i in range(70):
        t = TYPES[i % 4]
        if change and i == 0:  # 1 of every 100 resources changes
            t = "m1.xlarge"
        docs.append(
            f"apiVersion: stratus/v1\nkind: Instance\nmetadata:\n  name: vm-{i}\n  project: {name}\n  labels: {{tier: web, index: \"{i}\"}}\n"
            f"spec:\n  image: debian\n  instanceType: {t}\n  keyName: deploy\n  securityGroups: [web]\n"
        )
    for i in range(18):
        docs.append(f"apiVersion: stratus/v1\nkind: Volume\nmetadata: {{name: data-{i}, project: {name}}}\nspec:\n  sizeGB: {10 + i}\n  attachment: {{instance: vm-{i}}}\n")
    for i in range(5):
        docs.append(f"apiVersion: stratus/v1\nkind: Address\nmetadata: {{name: ip-{i}, project: {name}}}\nspec: {{instance: vm-{i}}}\n")
    assert len(docs) == PER_PROJECT
    return docs


def generate(directory, n, change):
    os.makedirs(directory, exist_ok=True)
    projects = n // PER_PROJECT
    per_file = 10  # projects per file: 1,000 resources a file
    for start in range(0, projects, per_file):
        with open(os.path.join(directory, f"set-{start // per_file:04d}.yaml"), "w") as f:
            docs = []
            for p in range(start, min(start + per_file, projects)):
                docs += project_docs(p, change)
            f.write("---\n".join(docs))


SINGLE_FILE_PER_PROJECT = 100  # security groups per project in the single-file case


def generate_single_file(directory, groups):
    """One file: `groups` SecurityGroups, in projects of 100 (with the user and project each needs)."""
    os.makedirs(directory, exist_ok=True)
    docs = []
    for p in range((groups + SINGLE_FILE_PER_PROJECT - 1) // SINGLE_FILE_PER_PROJECT):
        name = f"p{p:05d}"
        docs += project_docs(p, change=False)[:2]  # the User and the Project, as in the mixed set
        for g in range(min(SINGLE_FILE_PER_PROJECT, groups - p * SINGLE_FILE_PER_PROJECT)):
            source = f", sourceGroup: sg-{g - 1}" if g > 0 else ""
            docs.append(
                f"apiVersion: stratus/v1\nkind: SecurityGroup\nmetadata: {{name: sg-{g}, project: {name}}}\nspec:\n"
                f"  description: group {g}\n  ingress:\n  - {{protocol: tcp, fromPort: 443, toPort: 443}}\n"
                f"  - {{protocol: tcp, fromPort: {1000 + g}, toPort: {1000 + g}{source}}}\n"
            )
    with open(os.path.join(directory, "groups.yaml"), "w") as f:
        f.write("---\n".join(docs))
    return len(docs)


# The issue's targets: (what, resources, column of the row, seconds).
TARGETS = [
    ("diff, no change", 10000, "diff", 0.2),
    ("diff, no change", 100000, "diff", 1.0),
    ("diff, no change, one file of SecurityGroups", 10000, "single", 0.2),
    ("apply from empty", 10000, "empty", 3.0),
]


def timed(cmd, env, expect):
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode not in expect:
        sys.exit(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.decode()[:2000]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bin", default=".build/release/stratus")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--single-file", type=int, default=10000, metavar="N", help="SecurityGroups in the single-file diff case (0: skip it)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target measured here is not met")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="stratus-bench-")
    rows = []
    single = None
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            base = os.path.join(work, f"n{n}")
            files, changed = os.path.join(base, "files"), os.path.join(base, "changed")
            generate(files, n, change=False)
            generate(changed, n, change=True)
            applied = os.path.join(base, "applied")
            env = dict(os.environ, STRATUS_DATA=applied)
            timed([binary, "apply", "-f", files], env, {0})
            pristine = os.path.join(base, "pristine")  # applied state whose parse cache has never seen the changed files
            shutil.copytree(applied, pristine)

            def fresh(name, source=None):
                path = os.path.join(base, name)
                shutil.rmtree(path, ignore_errors=True)
                if source:
                    shutil.copytree(source, path)
                return dict(os.environ, STRATUS_DATA=path)

            empty = [timed([binary, "apply", "-f", files], fresh("empty"), {0}) for _ in range(args.runs)]
            diff = [timed([binary, "diff", "-f", files], env, {0}) for _ in range(args.runs)]
            diff_cold = [timed([binary, "diff", "--no-parse-cache", "-f", files], env, {0}) for _ in range(args.runs)]
            # The change touches every file (one instance in each project), so these parse every file: the worst case for the cache.
            diff_changed = [timed([binary, "diff", "-f", changed], fresh("copy", pristine), {2}) for _ in range(args.runs)]
            one_percent = [timed([binary, "apply", "-f", changed], fresh("copy", pristine), {0}) for _ in range(args.runs)]
            rows.append((n, statistics.median(diff), statistics.median(diff_cold), statistics.median(diff_changed), statistics.median(empty), statistics.median(one_percent)))
            print(f"N={n}: " + ", ".join(f"{v:.3f}s" for v in rows[-1][1:]), file=sys.stderr)
        if args.single_file > 0:
            base = os.path.join(work, "single")
            files = os.path.join(base, "files")
            resources = generate_single_file(files, args.single_file)
            env = dict(os.environ, STRATUS_DATA=os.path.join(base, "applied"))
            timed([binary, "apply", "-f", files], env, {0})
            single_diff = [timed([binary, "diff", "-f", files], env, {0}) for _ in range(args.runs)]
            single_cold = [timed([binary, "diff", "--no-parse-cache", "-f", files], env, {0}) for _ in range(args.runs)]
            single = (args.single_file, resources, statistics.median(single_diff), statistics.median(single_cold))
            print(f"single file, {args.single_file} groups: {single[2]:.3f}s, {single[3]:.3f}s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; median of {args.runs} runs, whole process.",
        f"Command: `python3 bench/apply_diff.py --bin {args.bin} --sizes {args.sizes}`",
        "",
        "| resources | diff, no change | diff, no change, --no-parse-cache | diff, 1% changed (every file touched) | apply from empty | apply, 1% changed (every file touched) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {n:,} | {d:.3f} s | {cold:.3f} s | {dc:.3f} s | {e:.3f} s | {c:.3f} s |" for n, d, cold, dc, e, c in rows]
    if single:
        groups, resources, d, cold = single
        lines += [
            "",
            f"One file of {groups:,} SecurityGroups (and the {resources - groups:,} users and projects they need: {resources:,} resources):",
            "",
            "| resources | diff, no change | diff, no change, --no-parse-cache |",
            "|---:|---:|---:|",
            f"| {resources:,} | {d:.3f} s | {cold:.3f} s |",
        ]
    measured = {}
    for n, d, cold, dc, e, c in rows:
        measured[("diff", n)] = d
        measured[("empty", n)] = e
    if single:
        measured[("single", single[0])] = single[2]
    checks = []
    for what, n, column, limit in TARGETS:
        if (column, n) in measured:
            value = measured[(column, n)]
            checks.append((f"{what}, {n:,}: {value:.3f} s (target < {limit:g} s)", value < limit))
    if checks:
        lines += ["", "Targets:"] + [f"- {label} {'met' if ok else 'NOT MET'}" for label, ok in checks]
        failed = sum(1 for _, ok in checks if not ok)
        lines.append(f"Targets: {'PASS' if failed == 0 else 'FAIL'} ({len(checks) - failed} of {len(checks)} met)")
    text = "\n".join(lines) + "\n"
    os.makedirs("bench/out", exist_ok=True)
    with open("bench/out/apply_diff.md", "w") as f:
        f.write(text)
    print(text)
    if args.strict and any(not ok for _, ok in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
