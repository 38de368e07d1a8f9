#!/usr/bin/env bash
# Installs what the dashboard's browser tests need: Debian's chromium package, driven headless by
# playwright-core (an npm dev dependency) through /usr/bin/chromium. Nothing is downloaded by
# playwright itself. Skips when chromium is present, or without root or apt-get (the browser
# test then skips and says why).
set -u
command -v chromium >/dev/null && exit 0
[ "$(id -u)" = 0 ] || { echo "not root: cannot install chromium; the dashboard browser tests will skip"; exit 0; }
command -v apt-get >/dev/null || { echo "no apt-get: cannot install chromium; the dashboard browser tests will skip"; exit 0; }
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
  || echo "could not install chromium: the dashboard browser tests will skip"
command -v chromium >/dev/null && chromium --version
exit 0
