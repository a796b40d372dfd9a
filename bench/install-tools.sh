#!/usr/bin/env bash
# Benchmarks synthesise their own speech with espeak-ng (Debian package). Install it where we can.
set -euo pipefail
if command -v espeak-ng >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
else
  echo "bench: espeak-ng is needed to make the benchmark audio; install it (apt-get install espeak-ng)" >&2
  exit 1
fi
