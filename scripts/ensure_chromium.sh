#!/usr/bin/env bash
# Install Debian's Chromium for the UI screenshot tests when it is missing and this
# machine can install it (root with apt-get); otherwise say that those tests skip.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Chromium for the MLflow UI screenshot tests (apt-get install chromium)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "NOTE: Chromium is not installed, so the UI screenshot tests will be skipped."
  echo "      Install it (Debian or Ubuntu: sudo apt-get install chromium) to run them."
fi
