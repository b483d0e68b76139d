#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs everything the build, the tests and `make run` need, with apt-get.
# Idempotent: when every package is already installed it does nothing (and needs
# no network), so `make`, `make test` and `make run` can depend on it cheaply.
set -euo pipefail

PKGS=(
    # build
    make gcc clang llvm pkg-config bpftool
    libbpf-dev libelf-dev zlib1g-dev
    libnats-dev libcurl4-openssl-dev libcjson-dev libwebsockets-dev libyaml-dev
    libssl-dev librdkafka-dev libjemalloc-dev
    # run
    nats-server
    # tests
    libcmocka-dev python3-pytest util-linux iproute2 openssl
    python3-aiosmtpd rsyslog rsyslog-gnutls python3-websocket chromium
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: run 'sudo make deps' (or install them with apt-get) and retry" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh once, then install.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
