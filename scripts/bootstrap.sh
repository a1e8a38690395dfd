#!/usr/bin/env bash
# Create .venv and install the pinned requirements (runtime, or `dev` for tests and tools).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUIREMENTS=requirements.txt
[ "${1:-}" = "dev" ] && REQUIREMENTS=requirements-dev.txt
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
STAMP=".venv/.installed-$(sha1sum requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)-${1:-run}"
if [ ! -f "$STAMP" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r "$REQUIREMENTS"
  touch "$STAMP"
fi
