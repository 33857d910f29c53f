#!/usr/bin/env bash
# Create .venv (once) and install the plugin with its tested dependency set.
# Usage: bash scripts/setup.sh [extra]   e.g. `tests` for the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=${1:-lite}

if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
py=.venv/bin/python
# torch first and explicitly: an unpinned torch would pull a multi-GB build.
if ! $py -c 'import torch, torchvision' 2>/dev/null; then
  $py -m pip install --quiet --upgrade pip
  $py -m pip install --quiet torch==2.14.1 torchvision==0.29.1
fi
$py -m pip install --quiet -e ".[$extra]"
