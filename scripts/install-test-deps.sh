#!/usr/bin/env bash
# Installs the real components the test suites drive: redis-server, openssl,
# curl, nginx and HAProxy, from Debian's packages. As root it installs what is
# missing; otherwise it names the packages to install and fails.
set -euo pipefail

declare -A need=(
	[redis-server]=redis-server
	[redis-cli]=redis-tools
	[openssl]=openssl
	[curl]=curl
	[nginx]=nginx
	[haproxy]=haproxy
)
missing=()
for bin in "${!need[@]}"; do
	if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
		missing+=("${need[$bin]}")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
# de-duplicate
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
	echo "The tests need these Debian packages: ${missing[*]}" >&2
	echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "Installing test dependencies: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps this quick; policy-rc.d stops the packages'
# own services from starting (tests start their own on loopback ports).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "Installed: ${missing[*]}"
