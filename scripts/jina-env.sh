#!/usr/bin/env bash
# Creates (or reuses) the Python 3.11 venv with jina 3.34.0, docarray 0.21.1 and the Python
# `cloudevents` SDK that the demo and the real-Flow tests need.
#
#   venv:   ${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}   (outside the repo)
#   pins:   scripts/jina-requirements.txt (a full, exact pin list: installs without resolving)
#
# Idempotent: the venv holds a stamp with the sha256 of the pin list; when it matches and the
# packages import, nothing is done. Progress goes to stderr; nothing is exported (callers use
# FLOWBRIDGE_JINA_VENV or the same default). The last line on stderr names the venv.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$repo_root/scripts/jina-requirements.txt"
venv="${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}"
stamp="$venv/.flowbridge-requirements.sha256"
imports='import jina, docarray, cloudevents'

say() { echo "jina-env: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

[[ -f "$requirements" ]] || die "pin list not found at $requirements"
want_sum="$(sha256sum "$requirements" | cut -d' ' -f1)"

# Quiet, offline-friendly jina: no telemetry calls while checking the imports.
export JINA_OPTOUT_TELEMETRY=1

venv_ok() {
    [[ -x "$venv/bin/python" ]] &&
        "$venv/bin/python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null
}

if venv_ok && [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want_sum" ]] &&
    "$venv/bin/python" -c "$imports" 2>/dev/null; then
    say "up to date: $venv"
    exit 0
fi

find_python311() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if ! venv_ok; then
    python="$(find_python311)" ||
        die "Python 3.11 not found (tried python3.11 and python3); install it (e.g. apt-get install python3.11 python3.11-venv)"
    if [[ -e "$venv" ]]; then
        # Only ever remove something that is recognisably a venv.
        [[ -f "$venv/pyvenv.cfg" ]] ||
            die "$venv exists but is not a Python venv (no pyvenv.cfg); remove it or set FLOWBRIDGE_JINA_VENV"
        say "existing venv at $venv is not Python 3.11 or is broken; recreating it"
        rm -rf -- "$venv"
    fi
    say "step 1/3: creating venv with $python ($("$python" --version 2>&1)) at $venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv" ||
        die "'$python -m venv' failed; the venv module may be missing (apt-get install python3.11-venv)"
else
    say "step 1/3: reusing venv at $venv"
fi

if [[ -t 2 ]]; then progress=on; else progress=off; fi
say "step 2/3: installing $(grep -cv '^\s*\(#\|$\)' "$requirements") pinned packages from scripts/jina-requirements.txt (about a minute on a fresh venv)"
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
    --progress-bar "$progress" -r "$requirements" >&2 ||
    die "pip install -r $requirements failed (see pip output above)"

say "step 3/3: checking imports"
"$venv/bin/python" -c "$imports; print('jina', jina.__version__, '/ docarray', docarray.__version__)" >&2 ||
    die "packages installed but '$imports' fails in $venv"

echo "$want_sum" >"$stamp"
say "ready: $venv"
