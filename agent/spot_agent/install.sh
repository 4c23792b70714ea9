#!/bin/sh
# Install spot-agent on an EC2 instance and start it under systemd. Meant to be called from user data:
#
#   SPOT_AGENT_TOKEN=... sh install.sh --operator-url https://ops.example.com:8443 \
#       --namespace prod --name build-server [--source SPEC] [--pre-stop 'systemctl stop app']
#
# Options:
#   --operator-url URL       the operator's agent API (required)
#   --namespace NS           the SpotAgent's namespace (required)
#   --name NAME              the SpotAgent's name (required)
#   --source SPEC            what pip installs: a wheel file, a URL, or a requirement
#                            (default: spot-optimizer; the agent needs only pydantic)
#   --token-file PATH        a file holding the agent token (default: $SPOT_AGENT_TOKEN is written to
#                            <etc>/token). The token is never taken on the command line, where other
#                            users could read it in the process list.
#   --pre-stop CMD           the drain command run on an interruption notice
#   --pre-stop-timeout SEC   its timeout (default 90)
#   --python PYTHON          the interpreter for the virtualenv (default: python3)
#   --no-start               write everything but do not enable or start the unit
#
# Where things go (environment): SPOT_AGENT_PREFIX (/opt/spot-agent), SPOT_AGENT_ETC (/etc/spot-agent),
# SPOT_AGENT_UNIT_DIR (/etc/systemd/system); extra arguments for an offline install:
# SPOT_AGENT_VENV_ARGS (e.g. --system-site-packages), SPOT_AGENT_PIP_ARGS (e.g. --no-index --find-links DIR).
set -eu

PREFIX=${SPOT_AGENT_PREFIX:-/opt/spot-agent}
ETC=${SPOT_AGENT_ETC:-/etc/spot-agent}
UNIT_DIR=${SPOT_AGENT_UNIT_DIR:-/etc/systemd/system}
VENV_ARGS=${SPOT_AGENT_VENV_ARGS:-}
PIP_ARGS=${SPOT_AGENT_PIP_ARGS:-}
PYTHON=python3
SOURCE=spot-optimizer
OPERATOR_URL=
NAMESPACE=
NAME=
TOKEN_FILE=
PRE_STOP=
PRE_STOP_TIMEOUT=90
START=1

die() {
    echo "install.sh: $*" >&2
    exit 2
}

need_value() {
    [ "$#" -ge 2 ] || die "$1 needs a value"
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        --operator-url) need_value "$@"; OPERATOR_URL=$2; shift 2 ;;
        --namespace) need_value "$@"; NAMESPACE=$2; shift 2 ;;
        --name) need_value "$@"; NAME=$2; shift 2 ;;
        --source) need_value "$@"; SOURCE=$2; shift 2 ;;
        --token-file) need_value "$@"; TOKEN_FILE=$2; shift 2 ;;
        --pre-stop) need_value "$@"; PRE_STOP=$2; shift 2 ;;
        --pre-stop-timeout) need_value "$@"; PRE_STOP_TIMEOUT=$2; shift 2 ;;
        --python) need_value "$@"; PYTHON=$2; shift 2 ;;
        --no-start) START=0; shift ;;
        -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

[ -n "$OPERATOR_URL" ] || die "--operator-url is required"
[ -n "$NAMESPACE" ] || die "--namespace is required"
[ -n "$NAME" ] || die "--name is required"
case "$PRE_STOP_TIMEOUT" in
    ''|*[!0-9]*) die "--pre-stop-timeout must be a whole number of seconds" ;;
esac

for value in "$OPERATOR_URL" "$NAMESPACE" "$NAME" "$TOKEN_FILE" "$PRE_STOP" "$PREFIX" "$ETC"; do
    case "$value" in
        *'
'*) die "a value may not contain a newline" ;;
    esac
done

# A TOML basic string: backslashes and quotes escaped (newlines were refused above).
toml_string() {
    printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

echo "install.sh: installing spot-agent from $SOURCE into $PREFIX" >&2
# shellcheck disable=SC2086  # the extra arguments are meant to be split
"$PYTHON" -m venv $VENV_ARGS "$PREFIX"
# shellcheck disable=SC2086
"$PREFIX/bin/python" -m pip install --quiet --disable-pip-version-check $PIP_ARGS "$SOURCE"
[ -x "$PREFIX/bin/spot-agent" ] || die "the installed package has no spot-agent command"

umask 077
mkdir -p "$ETC"
if [ -z "$TOKEN_FILE" ]; then
    TOKEN_FILE=$ETC/token
    if [ -n "${SPOT_AGENT_TOKEN:-}" ]; then
        printf '%s\n' "$SPOT_AGENT_TOKEN" > "$TOKEN_FILE"
    elif [ ! -s "$TOKEN_FILE" ]; then
        die "no token: set SPOT_AGENT_TOKEN or pass --token-file"
    fi
fi
[ -s "$TOKEN_FILE" ] || die "the token file $TOKEN_FILE is missing or empty"
chmod 600 "$TOKEN_FILE"

umask 022
CONFIG=$ETC/config.toml
{
    echo "# Written by spot-agent's install.sh; SPOT_AGENT_* environment variables override it."
    echo "operator_url = $(toml_string "$OPERATOR_URL")"
    echo "namespace = $(toml_string "$NAMESPACE")"
    echo "name = $(toml_string "$NAME")"
    echo "token_file = $(toml_string "$TOKEN_FILE")"
    if [ -n "$PRE_STOP" ]; then
        echo ""
        echo "[hooks.pre-stop]"
        echo "command = $(toml_string "$PRE_STOP")"
        echo "timeout_seconds = $PRE_STOP_TIMEOUT"
    fi
} > "$CONFIG.tmp"
mv "$CONFIG.tmp" "$CONFIG"

# Validate what was written with the agent's own rules before systemd runs it.
if ! "$PREFIX/bin/python" -c 'import sys; from pathlib import Path
from spot_agent.config import load_config
load_config(Path(sys.argv[1]), env={}).require_operator()' "$CONFIG"; then
    die "the configuration written to $CONFIG is not valid (see above)"
fi

mkdir -p "$UNIT_DIR"
"$PREFIX/bin/python" -c 'import importlib.resources as r
print(r.files("spot_agent").joinpath("systemd/spot-agent.service").read_text(), end="")' |
    sed "s#/opt/spot-agent/#$PREFIX/#g; s#/etc/spot-agent/#$ETC/#g" > "$UNIT_DIR/spot-agent.service"
echo "install.sh: wrote $CONFIG and $UNIT_DIR/spot-agent.service" >&2

if [ "$START" = 1 ]; then
    systemctl daemon-reload
    systemctl enable --now spot-agent.service
    echo "install.sh: spot-agent enabled and started (journalctl -u spot-agent)" >&2
fi
