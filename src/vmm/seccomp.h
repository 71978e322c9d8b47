/* seccomp.h - per-thread system call filters (docs/security.md).
 *
 * Every thread that handles untrusted input runs under its own seccomp
 * filter, installed before the first input: a vCPU thread before its first
 * KVM_RUN, the event loop before its first device event, the API server
 * before its first request, the thread that controls a VM (the front end's
 * main thread) once the VM is built. A forbidden call stops the process with
 * SIGSYS after one log line naming the thread and the call.
 *
 * The built-in filters are allow lists compiled with libseccomp, with
 * argument filters on ioctl, fcntl, socket, mmap, mprotect and madvise. A
 * custom set can be given as a file in Firecracker's compiled format (the
 * output of its seccompiler-bin: thread categories "vmm", "api", "vcpu";
 * arcvm's own "evloop" and "fs" fall back to "vmm" when absent).
 *
 * ARCVM_SECCOMP_AUDIT=FILE (a developer's tool, for maintaining the lists):
 * nothing is refused; each call a built-in filter would refuse is let
 * through and appended to FILE once, with the arguments that matter.
 */
#ifndef ARCVM_VMM_SECCOMP_H
#define ARCVM_VMM_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

enum seccomp_kind {
    SECCOMP_VCPU,
    SECCOMP_EVLOOP,
    SECCOMP_VMM,
    SECCOMP_API,
    SECCOMP_FS, /* a virtio-fs worker ("arcvm-fs"): the shared directory's files */
    SECCOMP_KINDS
};

/* One compiled filter; len 0 means "no filter" (an empty program in a
 * custom file, as in Firecracker). */
struct seccomp_prog {
    unsigned short len;
    void *ins; /* struct sock_filter[len] */
    bool audit;
};

/* Compile the filter for threads of @kind into @p: the built-in one, or the
 * one in @file when not NULL. -errno with a sentence in @err. */
int seccomp_prog_build(struct seccomp_prog *p, enum seccomp_kind kind, const char *file, char *err,
                       size_t errlen);
void seccomp_prog_release(struct seccomp_prog *p);
/* Install @p on the calling thread (and set no_new_privs, which an
 * unprivileged process needs for it). Nothing for an empty program. */
int seccomp_prog_apply(const struct seccomp_prog *p, enum seccomp_kind kind, char *err,
                       size_t errlen);
/* Build and apply in one go (threads that install their own filter once). */
int seccomp_thread(enum seccomp_kind kind, const char *file, char *err, size_t errlen);

/* False in a sanitizer build (ASan, TSan): their runtimes make system calls
 * of their own (sigaltstack, ptrace, /proc reads) that no list here can
 * predict, so seccomp_prog_apply() installs nothing there. False also with
 * ARCVM_SECCOMP=off in the environment (debugging: as --no-seccomp). */
bool seccomp_enforced(void);

const char *seccomp_kind_name(enum seccomp_kind kind);
/* Distinct system calls the built-in filter of @kind allows (docs, tests). */
unsigned seccomp_builtin_syscalls(enum seccomp_kind kind);

#endif
