#!/usr/bin/env bash
# Create bench/.venv: runq (editable) plus the peer task queues the benchmark compares it with.
# Usage: bash bench/setup.sh            (PYTHON=/path/to/python3.11 to pick the interpreter)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! {
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -e "$root" rq "celery[redis]" "dramatiq[redis]" huey redis hiredis rich
} >"$log" 2>&1; then
    cat "$log" >&2
    echo "bench/setup.sh: installation failed (see above)" >&2
    exit 1
fi

"$venv/bin/python" - <<'PY'
from importlib.metadata import version
names = ["runq", "rq", "celery", "kombu", "dramatiq", "huey", "redis"]
print("bench/.venv ready: " + ", ".join(f"{n} {version(n)}" for n in names))
PY

# arq (bench/async_bench.py) pins redis-py < 6, which runq's Redis backend does not run on: it
# gets a venv of its own, bench/.venv-arq, and runs there as separate processes.
arq_venv="$here/.venv-arq"
if [ ! -x "$arq_venv/bin/python" ]; then
    "$python" -m venv "$arq_venv"
fi
if ! "$arq_venv/bin/python" -m pip install --quiet --disable-pip-version-check arq >"$log" 2>&1; then
    cat "$log" >&2
    echo "bench/setup.sh: installing arq failed (see above)" >&2
    exit 1
fi
echo "bench/.venv-arq ready: arq $("$arq_venv/bin/python" -c 'from importlib.metadata import version; print(version("arq"))')"
