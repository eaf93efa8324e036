#!/bin/sh
# Run a command in an unpacked image filesystem the way a container runtime would, without one
# (these machines may not run containers): a chroot inside a private mount and PID namespace, so
# its /proc and /dev mounts, the bind mounts asked for, and every process it starts go away with
# it, even if the caller is killed. The network is the caller's: the host's, so loopback reaches
# services the test started on the host, unless the caller runs this in a network namespace of its
# own (runner_emulation.py does, with `ip netns exec`).
#
# usage: in-rootfs.sh ROOTFS WORKDIR [--bind HOST_PATH PATH_INSIDE]... [NAME=VALUE...] COMMAND [ARG...]
# --bind mounts a host file or folder at PATH_INSIDE (created in ROOTFS when missing), as
# `docker run -v` does. The command gets exactly the NAME=VALUE environment (the image's, as the
# test passes it).
set -eu
if [ "$#" -lt 3 ]; then
    echo "usage: $0 ROOTFS WORKDIR [--bind HOST_PATH PATH_INSIDE]... [NAME=VALUE...] COMMAND [ARG...]" >&2
    exit 2
fi
rootfs=$(realpath "$1")
shift
# --kill-child: if unshare dies (a timeout in the test), the namespace's first process gets
# SIGKILL, and with it every process in the namespace. The inner script's $1 and $@ are its own.
# shellcheck disable=SC2016
exec unshare --mount --propagation private --pid --fork --kill-child -- sh -eu -c '
    rootfs=$1
    workdir=$2
    shift 2
    mount -t proc proc "$rootfs/proc"
    mount --rbind /dev "$rootfs/dev"
    while [ "$#" -ge 3 ] && [ "$1" = --bind ]; do
        target=$rootfs$3
        if [ -d "$2" ]; then
            mkdir -p "$target"
        else
            mkdir -p "$(dirname "$target")"
            [ -e "$target" ] || : >"$target"
        fi
        mount --bind "$2" "$target"
        shift 3
    done
    exec chroot "$rootfs" /usr/bin/env -i --chdir="$workdir" "$@"
' in-rootfs "$rootfs" "$@"
