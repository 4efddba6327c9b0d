#!/usr/bin/env bash
# NOT a sandbox for real use. A crude stand-in for `cordon run`, built on bubblewrap, used only
# to check that the integration tests' legitimate-work twins (git, make, venv, npm, pty...) and
# the harness itself behave, before the real binary exists:
#   CORDON_IT_BIN=$PWD/scripts/bwrap-stand-in.sh cargo test -p cordon --test tools
# It implements only a fraction of the contract (no protected paths, no seccomp filter of its
# own, no policy), so most attack tests are expected to fail against it.
set -uo pipefail

[ "${1:-}" = run ] || { echo "bwrap-stand-in: only 'run' is supported" >&2; exit 125; }
shift
ws=$PWD
writable=()
envs=()
while [ $# -gt 0 ]; do
    case $1 in
        -w|--workspace) ws=$2; shift 2 ;;
        --allow-write) writable+=("${2/#\~/$HOME}"); shift 2 ;;
        --env) envs+=("$2"); shift 2 ;;
        -p|--policy|--allow-read|--deny-read|--audit) shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
ws=$(realpath -- "$ws") || { echo "bwrap-stand-in: bad workspace" >&2; exit 125; }
for d in "$ws" ${writable[@]+"${writable[@]}"}; do
    case "$HOME/" in "$d"/*|"$d/") echo "bwrap-stand-in: $d is at or above \$HOME; refusing" >&2; exit 125 ;; esac
    [ "$d" = / ] && { echo "bwrap-stand-in: / refused" >&2; exit 125; }
done

# Private copy of $HOME (minus the workspace and secrets), thrown away at exit.
layer=$(mktemp -d /tmp/bwrap-stand-in.XXXXXX) || exit 125
trap 'rm -rf "$layer"' EXIT
tar -C "$HOME" --exclude=./.ssh --exclude=./.aws --exclude=./.netrc \
    --exclude="./${ws#"$HOME"/}" -cf - . 2>/dev/null | tar -C "$layer" -xf - 2>/dev/null

args=(--unshare-all --die-with-parent --new-session --ro-bind / / --dev /dev --proc /proc
      --tmpfs /tmp --tmpfs /var/tmp --tmpfs /run --bind "$layer" "$HOME" --bind "$ws" "$ws")
for d in ${writable[@]+"${writable[@]}"}; do args+=(--bind "$d" "$d"); done
args+=(--clearenv --chdir "$ws")
for v in PATH HOME USER LOGNAME SHELL TERM COLORTERM LANG TZ EDITOR; do
    [ -n "${!v+x}" ] && args+=(--setenv "$v" "${!v}")
done
for e in ${envs[@]+"${envs[@]}"}; do
    case $e in
        *=*) args+=(--setenv "${e%%=*}" "${e#*=}") ;;
        *) [ -n "${!e+x}" ] && args+=(--setenv "$e" "${!e}") ;;
    esac
done
bwrap "${args[@]}" -- "$@"
