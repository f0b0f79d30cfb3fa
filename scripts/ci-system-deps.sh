#!/usr/bin/env bash
# System packages the test suite needs that a fresh machine lacks. Idempotent; quiet when already present.
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)          # node-gyp's generator (cmake-js prefers ninja when present)
command -v python3 >/dev/null || need+=(python3)    # node-gyp runs gyp with it
# Debian's chromium: the report and dashboard browser checks drive it with playwright-core (a test tool's own browser download cannot work offline).
[ -x /usr/bin/chromium ] || need+=(chromium)
# Debian's nats-server (JetStream): test/e2e/scale.test.ts runs the scale-out workers against a real server.
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]} (install them, e.g. apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
