#!/usr/bin/env bash
# Make sure the nginx binary is installed (Debian package `nginx`) for tests/e2e/test_scale_out.py.
#
# Idempotent and silent when nginx is already there. It installs the package only: the test runs
# its own nginx on 127.0.0.1 with a private config, so the system nginx service is kept from
# starting during the install (a temporary /usr/sbin/policy-rc.d, Debian's standard switch).
set -euo pipefail

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }

if have_nginx; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "ensure_nginx: nginx is not installed, this is not root and sudo is absent." >&2
    echo "ensure_nginx: as root, run: apt-get install -y nginx   (or re-run this script as root)" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_nginx: nginx is not installed and apt-get is absent; install nginx with the system's package manager." >&2
    exit 1
fi

log=$(mktemp)
policy=/usr/sbin/policy-rc.d
made_policy=0
cleanup() {
    rm -f "$log"
    if [ "$made_policy" = 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT

if [ ! -e "$policy" ]; then  # exit 101 = "action forbidden": invoke-rc.d / deb-systemd-invoke start nothing
    "${SUDO[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    made_policy=1
fi

apt() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y "$@" >>"$log" 2>&1; }

echo "ensure_nginx: installing nginx (apt-get install -y nginx)" >&2
if ! apt install --no-install-recommends nginx; then
    echo "ensure_nginx: install failed; running apt-get update and retrying" >&2
    if ! { apt update && apt install --no-install-recommends nginx; }; then
        tail -n 40 "$log" >&2
        echo "ensure_nginx: could not install nginx" >&2
        exit 1
    fi
fi

if ! have_nginx; then
    echo "ensure_nginx: apt-get succeeded but no nginx binary is on PATH or at /usr/sbin/nginx" >&2
    exit 1
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
echo "ensure_nginx: installed $("$nginx_bin" -v 2>&1)" >&2
