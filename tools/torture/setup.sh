#!/usr/bin/env bash
# Installs what the torture suite's partition faults need (Debian packages iproute2 for network
# namespaces and veth pairs, nftables for cutting links) when they are missing. Only as root:
# without root the runner skips partitions and says so, so there is nothing to install.
set -u
[ "$(id -u)" = 0 ] || exit 0
command -v apt-get >/dev/null || exit 0
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || missing+=(nftables)
[ ${#missing[@]} -eq 0 ] && exit 0
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
  || echo "could not install ${missing[*]}: the torture suite will skip partitions"
