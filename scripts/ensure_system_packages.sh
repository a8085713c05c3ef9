#!/usr/bin/env bash
# Install the Debian packages some tests use when they are missing and this machine can
# install them (root with apt-get): Chromium for the MLflow UI screenshot tests and tmux
# for notebook 03's background-server demo. Elsewhere, say which tests will be skipped.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v tmux >/dev/null || missing+=(tmux)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing ${missing[*]} for the screenshot and background-server tests (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "NOTE: ${missing[*]} not installed, so the tests that need them will be skipped."
  echo "      Install them (Debian or Ubuntu: sudo apt-get install ${missing[*]}) to run them."
fi
