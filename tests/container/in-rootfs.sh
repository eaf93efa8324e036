#!/bin/sh
# Run a command in an unpacked image filesystem the way a container runtime would, without one
# (these machines may not run containers): a chroot inside a private mount and PID namespace, so
# its /proc and /dev mounts and every process it starts go away with it, even if the caller is
# killed. The network is the host's, so loopback reaches services the test started on the host.
#
# usage: in-rootfs.sh ROOTFS WORKDIR [NAME=VALUE...] COMMAND [ARG...]
# The command gets exactly the NAME=VALUE environment (the image's, as the test passes it).
set -eu
if [ "$#" -lt 3 ]; then
    echo "usage: $0 ROOTFS WORKDIR [NAME=VALUE...] COMMAND [ARG...]" >&2
    exit 2
fi
rootfs=$(realpath "$1")
workdir=$2
shift 2
# --kill-child: if unshare dies (a timeout in the test), the namespace's first process gets
# SIGKILL, and with it every process in the namespace. The inner script's $1 and $@ are its own.
# shellcheck disable=SC2016
exec unshare --mount --propagation private --pid --fork --kill-child -- sh -eu -c '
    rootfs=$1
    shift
    mount -t proc proc "$rootfs/proc"
    mount --rbind /dev "$rootfs/dev"
    exec chroot "$rootfs" /usr/bin/env -i "$@"
' in-rootfs "$rootfs" --chdir="$workdir" "$@"
