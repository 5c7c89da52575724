#!/usr/bin/env bash
# Install what the test suite needs and run it: redis-server (apt-get, when missing), a venv
# with runq and its test extras, then ruff, mypy and pytest. Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 && ! command -v valkey-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing redis-server (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
        # the package may start a system service on 6379; the tests start their own server
        (command -v systemctl >/dev/null && systemctl stop redis-server) >/dev/null 2>&1 || true
    else
        echo "redis-server is missing: install it (e.g. sudo apt-get install redis-server)" >&2
        exit 1
    fi
fi

# The web dashboard's browser tests (tests/web/) drive Debian's headless Chromium through
# Selenium: no browser is downloaded at install time.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing chromium and chromium-driver (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "chromium and chromium-driver are missing: install them (e.g. sudo apt-get install chromium chromium-driver)" >&2
        exit 1
    fi
fi

# CPython's own concurrent.futures tests, run against runq.Executor (tests/test_executor_cpython.py
# skips, saying why, when neither this Python nor the system ships them).
if [ "$(id -u)" = 0 ] && [ ! -e /usr/lib/python3.11/test/test_concurrent_futures.py ] \
        && command -v apt-get >/dev/null 2>&1; then
    echo "installing libpython3.11-testsuite (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpython3.11-testsuite >/dev/null) \
        || echo "libpython3.11-testsuite not installed: the CPython executor tests will skip"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]'

echo "== ruff"
.venv/bin/ruff check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== mkdocs build --strict"
site_dir=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site_dir"
rm -rf "$site_dir"
echo "== pytest"
.venv/bin/python -m pytest -q "$@"

# Every worker the suite started must be gone: owned workers die with their owner (issue 15),
# and every test stops the others by pid. A straggler is a leak: list it and fail.
echo "== leftover runq worker processes"
for _ in $(seq 1 30); do
    pgrep -f 'runq worker' >/dev/null || break
    sleep 0.5  # owned workers are giving back their task as the last test process ends
done
if pgrep -af 'runq worker'; then
    echo "runq worker processes left behind by the test suite (listed above)" >&2
    exit 1
fi
echo "none"
