# Sourced by scripts/test.sh: prepares what the tests need on a fresh clone, and reuses it after.
#
# - Debian packages for the programs the tests start (redis-server, ...), installed when missing.
# - A virtualenv at target/py-venv with the pinned packages of scripts/requirements-test.txt,
#   rebuilt only when that file (or the Python interpreter) changes: target/py-venv/.stamp holds
#   their hash. Exports LLM_ROUTER_TEST_PYTHON, the interpreter the tests run Python with.
#
# Bash only; expects `set -euo pipefail` and the repository root as working directory.

# A program the tests run → the Debian package that provides it. Adding one is one line.
TEST_PROGRAMS=(
    "redis-server redis-server"
    "gpg gnupg"
    "chromium chromium"
)

_apt_updated=""
_as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo "$@"
    else
        return 1
    fi
}

# Installs the Debian packages named, running `apt-get update` once per test run.
apt_install() {
    if [ "$(id -u)" != 0 ] && ! { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
        echo "scripts/test.sh: the tests need the Debian package(s): $*" >&2
        echo "  not root and no password-less sudo here: install them with" >&2
        echo "  sudo apt-get install -y $*" >&2
        echo "  then run scripts/test.sh again." >&2
        return 1
    fi
    if [ -z "$_apt_updated" ]; then
        echo "   apt-get update" >&2
        _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        _apt_updated=1
    fi
    echo "   apt-get install -y $*" >&2
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_programs() {
    local missing=() line prog pkg
    for line in "${TEST_PROGRAMS[@]}"; do
        read -r prog pkg <<<"$line"
        command -v "$prog" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
    for line in "${TEST_PROGRAMS[@]}"; do
        read -r prog pkg <<<"$line"
        if ! command -v "$prog" >/dev/null 2>&1; then
            echo "scripts/test.sh: $prog is still missing after installing $pkg" >&2
            return 1
        fi
    done
}

ensure_venv() {
    local req=scripts/requirements-test.txt
    local venv="$PWD/target/py-venv"
    if ! command -v python3 >/dev/null 2>&1; then
        apt_install python3 python3-venv
    fi
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    local want
    want="$( { python3 -c 'import sys; print(sys.version)'; cat "$req"; } | sha256sum | cut -d' ' -f1)"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$want" ]; then
        echo "   building $venv from $req" >&2
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv"
        # Every package is pinned in the file, dependencies included: --no-deps keeps it exact
        # (and keeps radlab-llm-router's own heavy dependencies out; its SDK needs only
        # requests and pydantic).
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req"
        echo "$want" >"$venv/.stamp"
    fi
    "$venv/bin/python" -c 'import openai, anthropic, ollama, llm_router_lib, kubernetes_validate, yaml, playwright.sync_api' || {
        echo "scripts/test.sh: $venv lacks a test package; delete it and run again" >&2
        return 1
    }
    export LLM_ROUTER_TEST_PYTHON="$venv/bin/python"
}
