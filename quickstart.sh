#!/usr/bin/env bash
# rgbkit quick start: `./quickstart.sh app` or `./quickstart.sh test`.
# Creates .venv/ in the repo root (reused when nothing changed), installs
# rgbkit with everything it needs, then starts the dashboard or runs the tests.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=.venv

deps_hash() { cat pyproject.toml quickstart.sh | sha256sum | cut -c1-16; }

ensure_venv() {
    local want; want=$(deps_hash)
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.rgbkit-deps" 2>/dev/null)" = "$want" ]; then
        return
    fi
    echo "[rgbkit] setting up $VENV (first run, or pyproject.toml changed)"
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    # torch first and pinned: this CPU build is on the machine's disk; an
    # unpinned torch would pull a multi-GB CUDA build.
    "$VENV/bin/pip" install -q "torch==2.13.0"
    "$VENV/bin/pip" install -q -e ".[test]"
    echo "$want" > "$VENV/.rgbkit-deps"
}

ensure_browser() {
    # Browser tests drive Debian's Chromium (never a downloaded browser).
    if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "[rgbkit] installing Debian chromium for the browser tests"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "[rgbkit] could not install chromium: browser tests will be skipped"
    fi
}

cmd=${1:-app}
shift || true
case "$cmd" in
    app)
        ensure_venv
        exec "$VENV/bin/rgbkit" app "$@"
        ;;
    test)
        ensure_venv
        ensure_browser
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: $0 app|test [args]" >&2
        exit 2
        ;;
esac
