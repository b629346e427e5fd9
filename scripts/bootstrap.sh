#!/usr/bin/env bash
# Idempotent set-up of everything bitfab needs on a fresh Debian 12 / Python 3.11 machine:
# system packages (Fashion-MNIST, Icarus), the project venv in .venv with pinned packages, and
# bitfab itself (editable). A second run on a ready machine only checks a stamp and returns.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
stamp="$venv/.bitfab-stamp"
want="$(cat requirements.lock pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"

# System packages: only when something is missing. chromium: headless rendering of the
# `bitfab explore` HTML report in its tests.
apt_pkgs=()
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || apt_pkgs+=(dataset-fashion-mnist)
command -v iverilog >/dev/null 2>&1 || apt_pkgs+=(iverilog)
[ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  echo "bootstrap: installing system packages: ${apt_pkgs[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_pkgs[@]}" >&2
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "bootstrap: setting up $venv (first run takes a few minutes)" >&2
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install "pip>=24" >&2
# torch first, pinned, so nothing later pulls a CUDA build.
"${pip[@]}" install "torch==2.13.0" >&2
"${pip[@]}" install -r requirements.lock >&2
# finn-plus pins brevitas==0.13.0 (broken on torch 2.13): install it without its dependency pins.
"${pip[@]}" install --no-deps "finn-plus==1.6.1" >&2
"${pip[@]}" install --no-deps -e . >&2
echo "$want" > "$stamp"
echo "bootstrap: ready" >&2
