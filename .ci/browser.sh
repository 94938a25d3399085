#!/usr/bin/env bash
# Installs Debian's chromium, used headless by the report test (tests/test_studies_report.py)
# to check that `metaunsup report` pages load without console errors and that every image
# renders. Needs root and apt-get; otherwise (or on failure) it says so and the test skips.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: not root or no apt-get; skipping chromium (the browser test will skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1 \
  || echo "note: could not install chromium; the browser test will skip" >&2
exit 0
