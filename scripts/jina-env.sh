#!/usr/bin/env bash
# Creates (or reuses) the Python 3.11 venvs the demo and the real-Flow tests need:
#
#   scripts/jina-env.sh [v1|v2|all]        (default: all)
#
#   v1: jina 3.34.0 + docarray 0.21.1 (docarray v1) + the Python `cloudevents` SDK
#       venv ${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}
#       pins scripts/jina-requirements.txt
#   v2: jina 3.34.0 + docarray 0.40.0 (docarray v2) + the Python `cloudevents` SDK
#       venv ${FLOWBRIDGE_JINA_V2_VENV:-$HOME/.cache/flowbridge/jina-v2-venv}
#       pins scripts/jina-v2-requirements.txt
#
# Both venvs live outside the repo; each pin list is full and exact, so it installs without
# resolving (about a minute on a fresh venv). Idempotent: each venv holds a stamp with the
# sha256 of its pin list; when it matches and the packages import, nothing is done. Progress
# goes to stderr; nothing is exported (callers use the variables above or the same defaults).
# The last line on stderr for each kind names its venv.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
imports='import jina, docarray, cloudevents'

say() { echo "jina-env: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# Quiet, offline-friendly jina: no telemetry calls while checking the imports.
export JINA_OPTOUT_TELEMETRY=1

is_python311() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null
}

find_python311() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && is_python311 "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# prepare KIND VENV REQUIREMENTS DOCARRAY_MAJOR VENV_VARIABLE
prepare() {
    local kind="$1" venv="$2" requirements="$3" docarray_major="$4" variable="$5"
    local stamp="$venv/.flowbridge-requirements.sha256"
    local check="$imports; import sys; sys.exit(0 if tuple(int(x) for x in docarray.__version__.split('.')[:2]) $docarray_major else 1)"

    [[ -f "$requirements" ]] || die "$kind: pin list not found at $requirements"
    local want_sum
    want_sum="$(sha256sum "$requirements" | cut -d' ' -f1)"

    local venv_ok=false
    if [[ -x "$venv/bin/python" ]] && is_python311 "$venv/bin/python"; then venv_ok=true; fi

    if $venv_ok && [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want_sum" ]] &&
        "$venv/bin/python" -c "$check" 2>/dev/null; then
        say "$kind up to date: $venv"
        return 0
    fi

    if ! $venv_ok; then
        local python
        python="$(find_python311)" ||
            die "Python 3.11 not found (tried python3.11 and python3); install it (e.g. apt-get install python3.11 python3.11-venv)"
        if [[ -e "$venv" ]]; then
            # Only ever remove something that is recognisably a venv.
            [[ -f "$venv/pyvenv.cfg" ]] ||
                die "$venv exists but is not a Python venv (no pyvenv.cfg); remove it or set $variable"
            say "$kind: existing venv at $venv is not Python 3.11 or is broken; recreating it"
            rm -rf -- "$venv"
        fi
        say "$kind step 1/3: creating venv with $python ($("$python" --version 2>&1)) at $venv"
        mkdir -p "$(dirname "$venv")"
        "$python" -m venv "$venv" ||
            die "'$python -m venv' failed; the venv module may be missing (apt-get install python3.11-venv)"
    else
        say "$kind step 1/3: reusing venv at $venv"
    fi

    local progress=off
    if [[ -t 2 ]]; then progress=on; fi
    say "$kind step 2/3: installing $(grep -cv '^\s*\(#\|$\)' "$requirements") pinned packages from ${requirements#"$repo_root"/} (about a minute on a fresh venv)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
        --progress-bar "$progress" -r "$requirements" >&2 ||
        die "$kind: pip install -r $requirements failed (see pip output above)"

    say "$kind step 3/3: checking imports and the docarray version"
    "$venv/bin/python" -c "$imports; print('jina', jina.__version__, '/ docarray', docarray.__version__)" >&2 ||
        die "$kind: packages installed but '$imports' fails in $venv"
    "$venv/bin/python" -c "$check" ||
        die "$kind: $venv has the wrong docarray major version for a $kind Flow"

    echo "$want_sum" >"$stamp"
    say "$kind ready: $venv"
}

prepare_v1() {
    # docarray < 0.30 is v1.
    prepare v1 "${FLOWBRIDGE_JINA_VENV:-$HOME/.cache/flowbridge/jina-venv}" \
        "$repo_root/scripts/jina-requirements.txt" "< (0, 30)" FLOWBRIDGE_JINA_VENV
}

prepare_v2() {
    # docarray >= 0.30 is v2.
    prepare v2 "${FLOWBRIDGE_JINA_V2_VENV:-$HOME/.cache/flowbridge/jina-v2-venv}" \
        "$repo_root/scripts/jina-v2-requirements.txt" ">= (0, 30)" FLOWBRIDGE_JINA_V2_VENV
}

case "${1:-all}" in
v1) prepare_v1 ;;
v2) prepare_v2 ;;
all)
    prepare_v1
    prepare_v2
    ;;
*) die "unknown kind '$1': expected v1, v2 or all" ;;
esac
