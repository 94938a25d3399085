#!/usr/bin/env bash
# Installs the Debian packages that provide offline data (Fashion-MNIST IDX files,
# fonts for rendered glyphs). Needs root; anything missing is reported, not fatal:
# the library then says which dataset is unavailable and how to get it.
set -u
need=()
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
[ -d /usr/share/fonts/truetype/liberation2 ] || need+=(fonts-liberation2)
[ -d /usr/share/fonts/truetype/freefont ] || need+=(fonts-freefont-ttf)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: not root or no apt-get; skipping system data packages: ${need[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
(apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null 2>&1 \
  || echo "note: could not install ${need[*]}; those datasets will be reported unavailable" >&2
exit 0
