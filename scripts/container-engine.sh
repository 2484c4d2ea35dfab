#!/usr/bin/env bash
# A container engine for the testcontainers tests (tests/containers), and the project's
# PostgreSQL 15 + pg_cron image (containers/postgres) in it.
#
#   eval "$(scripts/container-engine.sh up)"   engine + image; prints the environment to use
#   scripts/container-engine.sh down           stops what `up` started (by PID), removes its containers
#   scripts/container-engine.sh status         says what runs
#   scripts/container-engine.sh install        only the Debian packages (root)
#   scripts/container-engine.sh image          the image name the current source builds
#   scripts/container-engine.sh check          exit 1 if a container or process of this store is left
#
# `up` uses a Docker or podman socket that already answers (DOCKER_HOST, or a `docker` CLI that
# works): it prints DOCKER_HOST and leaves the image to the tests, which build it there on the
# official postgres:15 (tests/containers/engine.py). Otherwise, as root on Debian, it installs
# podman (waiting for, never breaking, a dpkg lock held by someone else), writes podman's
# configuration under .containers/ (gitignored), builds the image when its source changed
# (tagged with a hash of containers/postgres and the base, so an unchanged source is never
# rebuilt), and starts podman's Docker-compatible socket. Idempotent: a second `up` reuses all.
# Exit 3 with a one-line reason when no engine can run here (not root, no apt-get, ...).
# Progress goes to stderr; stdout is only the `export` lines.
#
# Why the podman settings (each was needed on a CI-like host, see README "Containers"):
# default_ulimits at the host's hard limits (a container cannot raise them without
# CAP_SYS_RESOURCE), runc + cgroupfs (crun refuses a host mixing cgroup v1 and v2),
# events_logger = file (no journald), exit_command_delay = 10 (testcontainers' readiness execs
# otherwise leave conmon processes for 300 s).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=$ROOT/.containers
SRC=$ROOT/containers/postgres
IMAGE_REPO=localhost/hierarchy-postgres
DEBIAN_BASE=localhost/hierarchy-bookworm:latest
BASE=${HIERARCHY_POSTGRES_BASE:-$DEBIAN_BASE}
PACKAGES="podman runc conmon netavark aardvark-dns iptables catatonit uidmap debootstrap"
# podman's run root holds sockets: keep it short (108-byte limit) and per checkout.
RUNROOT=/run/hierarchy-podman-$(printf '%s' "$ROOT" | sha256sum | cut -c1-10)
SOCKET=$RUNROOT/podman.sock
PIDFILE=$STATE/podman-service.pid

say() { printf 'container-engine: %s\n' "$*" >&2; }
cannot() {
    say "no container engine can run here: $*"
    exit 3
}

image_tag() {
    local hash
    hash=$({ cat "$SRC/Containerfile" "$SRC/entrypoint.sh"; printf '%s' "$BASE"; } | sha256sum | cut -c1-12)
    printf '%s:%s\n' "$IMAGE_REPO" "$hash"
}

# -- an engine that already answers ---------------------------------------------------------
socket_answers() { # $1: a unix:// URL
    local path=${1#unix://}
    [ -S "$path" ] || return 1
    if command -v curl >/dev/null; then
        curl -sf --max-time 3 --unix-socket "$path" http://d/_ping >/dev/null
    elif command -v podman >/dev/null; then
        timeout 5 podman --remote --url "$1" version >/dev/null 2>&1
    else
        return 1
    fi
}

external_engine() {
    if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" != "$DOCKER_HOST" ] &&
        [ "$DOCKER_HOST" != "unix://$SOCKET" ] && socket_answers "$DOCKER_HOST"; then
        printf '%s\n' "$DOCKER_HOST"
        return 0
    fi
    if [ -z "${DOCKER_HOST:-}" ] && socket_answers unix:///var/run/docker.sock; then
        printf 'unix:///var/run/docker.sock\n'
        return 0
    fi
    return 1
}

# -- our own podman ---------------------------------------------------------------------------
missing_packages() {
    local p missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
    done
    printf '%s' "${missing# }"
}

install_packages() {
    [ "$(id -u)" = 0 ] || cannot "not root (podman here runs as root; or start Docker and set DOCKER_HOST)"
    command -v apt-get >/dev/null && command -v dpkg-query >/dev/null ||
        cannot "no apt-get (install podman yourself, or start Docker and set DOCKER_HOST)"
    local missing
    missing=$(missing_packages)
    [ -n "$missing" ] || return 0
    say "installing $missing (waiting for the dpkg lock if another apt holds it)"
    # DPkg::Lock::Timeout waits for the lock instead of failing; the lock is never removed.
    local apt=(apt-get -q -o DPkg::Lock::Timeout=900)
    local try
    for try in 1 2 3; do
        if "${apt[@]}" update >&2; then break; fi
        [ "$try" = 3 ] && cannot "apt-get update failed three times"
        sleep 10
    done
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends $missing >&2 ||
        cannot "apt-get install $missing failed"
}

write_config() {
    mkdir -p "$STATE" "$RUNROOT"
    local nofile nproc pid_max
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] && nofile=1048576
    nproc=$(ulimit -Hu)
    pid_max=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
    cat >"$STATE/containers.conf.new" <<EOF
# Written by scripts/container-engine.sh (rewritten on every \`up\`): podman for the tests.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
exit_command_delay = 10

[network]
network_backend = "netavark"
EOF
    cat >"$STATE/storage.conf.new" <<EOF
# Written by scripts/container-engine.sh: this checkout's own image and container store.
[storage]
driver = "overlay"
graphroot = "$STATE/storage"
runroot = "$RUNROOT/storage"
EOF
    mv "$STATE/containers.conf.new" "$STATE/containers.conf"
    mv "$STATE/storage.conf.new" "$STATE/storage.conf"
    export CONTAINERS_CONF=$STATE/containers.conf CONTAINERS_STORAGE_CONF=$STATE/storage.conf
}

debian_mirror() { # the machine's own Debian archive, from its apt sources
    local uri
    uri=$(
        {
            for f in /etc/apt/sources.list.d/*.sources; do
                [ -f "$f" ] || continue
                # deb822 stanzas: the URIs of a stanza whose Suites list the release itself
                awk 'BEGIN{RS=""} /(^|\n)Types:[^\n]*deb([ \t]|\n|$)/ && /(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ {
                        if (match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/^\n?URIs:[ \t]*/, "", s); print s }
                     }' "$f"
            done
            for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -f "$f" ] || continue
                awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == "bookworm") print $i }' "$f"
            done
        } | grep -E '^https?://' | head -n1
    )
    [ -n "$uri" ] || cannot "no Debian bookworm mirror in /etc/apt/sources.list{,.d} for debootstrap"
    printf '%s\n' "$uri"
}

ensure_image() {
    local tag
    tag=$(image_tag)
    if podman image exists "$tag"; then
        say "image $tag is up to date"
        printf '%s\n' "$tag"
        return 0
    fi
    if [ "$BASE" = "$DEBIAN_BASE" ] && ! podman image exists "$DEBIAN_BASE"; then
        local mirror rootfs=$STATE/rootfs
        mirror=$(debian_mirror)
        say "building the base image $DEBIAN_BASE: debootstrap --variant=minbase bookworm from $mirror"
        local base_started=$SECONDS
        rm -rf "$rootfs"
        # nice: the tests start this in the background while other suites run in the foreground
        nice -n 10 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$STATE/debootstrap.log" 2>&1 || {
            tail -n 20 "$STATE/debootstrap.log" >&2
            cannot "debootstrap failed (log: $STATE/debootstrap.log)"
        }
        tar -C "$rootfs" -c . | podman import --quiet - "$DEBIAN_BASE" >/dev/null
        rm -rf "$rootfs"
        say "base image built in $((SECONDS - base_started)) s"
    fi
    say "building $tag on $BASE"
    local started=$SECONDS
    nice -n 10 podman build --quiet --build-arg "BASE=$BASE" --label "org.hierarchy.source-hash=${tag##*:}" \
        -t "$tag" -f "$SRC/Containerfile" "$SRC" >"$STATE/build.log" 2>&1 || {
        tail -n 30 "$STATE/build.log" >&2
        say "podman build failed (log: $STATE/build.log)"
        exit 1
    }
    say "built $tag in $((SECONDS - started)) s"
    # older builds of the same source tree are of no further use
    podman images --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" | grep -vxF "$tag" |
        xargs -r podman rmi -f >/dev/null 2>&1 || true
    printf '%s\n' "$tag"
}

service_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q podman "/proc/$pid/cmdline" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

start_service() {
    if service_pid >/dev/null && socket_answers "unix://$SOCKET"; then
        say "podman socket already serving at $SOCKET (pid $(service_pid))"
        return 0
    fi
    rm -f "$SOCKET"
    # its own session, so a Ctrl-C in the terminal that ran `up` does not stop it; `down` does
    setsid podman system service --time=0 "unix://$SOCKET" >"$STATE/podman-service.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local i
    for i in $(seq 1 100); do
        socket_answers "unix://$SOCKET" && { say "podman socket serving at $SOCKET (pid $!)"; return 0; }
        kill -0 "$!" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$STATE/podman-service.log" >&2
    say "podman system service did not answer (log: $STATE/podman-service.log)"
    exit 1
}

cmd_up() {
    local host
    if host=$(external_engine); then
        say "using the engine that answers at $host (the tests build the image there)"
        printf 'export DOCKER_HOST=%q\n' "$host"
        return 0
    fi
    [ "$(uname -s)" = Linux ] || cannot "podman as root needs Linux (start Docker and set DOCKER_HOST)"
    install_packages
    write_config
    local tag
    tag=$(ensure_image)
    start_service
    printf 'export DOCKER_HOST=%q\n' "unix://$SOCKET"
    printf 'export TESTCONTAINERS_RYUK_DISABLED=true\n' # Ryuk's image cannot be pulled
    printf 'export TESTCONTAINERS_CONNECTION_MODE=docker_host\n' # /.dockerenv would mislead it
    printf 'export CONTAINERS_CONF=%q\n' "$CONTAINERS_CONF"
    printf 'export CONTAINERS_STORAGE_CONF=%q\n' "$CONTAINERS_STORAGE_CONF"
    printf 'export HIERARCHY_POSTGRES_IMAGE=%q\n' "$tag"
}

cmd_down() {
    [ -f "$STATE/containers.conf" ] || { say "nothing to stop"; return 0; }
    export CONTAINERS_CONF=$STATE/containers.conf CONTAINERS_STORAGE_CONF=$STATE/storage.conf
    if command -v podman >/dev/null; then
        # this checkout's store holds only what the tests started: remove it all
        podman rm --all --force --time 5 >/dev/null 2>&1 || true
    fi
    local pid i
    if pid=$(service_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        say "stopped the podman socket (pid $pid)"
    else
        say "the podman socket was not running"
    fi
    rm -f "$PIDFILE" "$SOCKET"
    # conmon processes of finished execs (testcontainers' readiness probes) outlive their
    # container by exit_command_delay: wait for them, then end those of this store, by PID
    local left
    for i in $(seq 1 150); do
        left=$(store_processes)
        [ -n "$left" ] || break
        sleep 0.1
    done
    if [ -n "$left" ]; then
        say "ending leftover conmon processes of this store: $left"
        # shellcheck disable=SC2086
        kill -TERM $left 2>/dev/null || true
        sleep 1
    fi
    # the run root is state of running containers only (the images stay in .containers/)
    [ -n "$(store_processes)" ] || rm -rf "$RUNROOT"
}

store_processes() { # PIDs of conmon/podman processes working on this checkout's store
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [ "$pid" != $$ ] || continue
        tr '\0' ' ' 2>/dev/null <"$f" | grep -q -e "^/usr/bin/conmon .*$STATE/storage" \
            -e "^podman .*$STATE/storage" -e "^/usr/bin/podman .*$STATE/storage" && printf '%s ' "$pid"
    done
    return 0
}

cmd_check() {
    local left containers=""
    left=$(store_processes)
    if [ -f "$STATE/containers.conf" ] && command -v podman >/dev/null; then
        containers=$(CONTAINERS_CONF=$STATE/containers.conf CONTAINERS_STORAGE_CONF=$STATE/storage.conf \
            podman ps -a --format '{{.ID}} {{.Image}} {{.Status}}' 2>/dev/null)
    fi
    if service_pid >/dev/null || [ -n "$left" ] || [ -n "$containers" ]; then
        say "left behind: ${containers:+containers [$containers] }${left:+processes [$left] }$(service_pid || true)"
        return 1
    fi
    rm -rf "$RUNROOT" # podman ps recreated it
    say "nothing of the container engine is left running (no container, no podman or conmon process)"
}

cmd_status() {
    local pid
    if pid=$(service_pid); then
        say "podman socket at unix://$SOCKET, pid $pid"
        CONTAINERS_CONF=$STATE/containers.conf CONTAINERS_STORAGE_CONF=$STATE/storage.conf podman ps -a >&2
    else
        say "not running"
    fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
install) install_packages ;;
image) image_tag ;;
check) cmd_check ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
