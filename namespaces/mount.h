// The mount namespace of a sandbox: what the crbox init sets up before it starts the application.
#pragma once

#include "checkpoint/model/sandbox_spec.h"

namespace crbox::ns {

// Runs inside a fresh mount namespace (and pid namespace, for /proc). In order:
//  1. makes every mount private, recursively, so nothing propagates back to the host
//     (mount_namespaces(7): a new namespace copies the propagation types of the old one);
//  2. with spec.rootfs: bind-mounts it onto itself (pivot_root(2) needs a mount point), mounts the
//     binds into it, a small /dev (tmpfs plus the host's null, zero, full, random, urandom, tty), and
//     switches to it with pivot_root(".", ".") then umount2(".", MNT_DETACH) as pivot_root(2) shows;
//     without a rootfs the binds go straight onto the host's tree (only inside this namespace);
//  3. a private /proc for the new pid namespace, and a private tmpfs /tmp;
//     with --net=none also a fresh read-only /sys, so /sys/class/net shows the sandbox's devices;
//  4. spec.read_only_root: remounts "/" read-only (MS_BIND|MS_REMOUNT|MS_RDONLY affects only this
//     namespace's copy of the mount).
// A missing bind target is created inside a rootfs or below the private /tmp; elsewhere it must
// exist (crbox never creates files on the host's tree). Throws crbox::Error.
void setup_sandbox_mounts(const model::SandboxSpec& spec);

}  // namespace crbox::ns
