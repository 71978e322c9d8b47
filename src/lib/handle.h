/* handle.h - the library's handle, shared by its files (arcvm.c, the
 * lifecycle and configuration; snapshot.c). Nothing outside src/lib/
 * includes this. */
#ifndef ARCVM_LIB_HANDLE_H
#define ARCVM_LIB_HANDLE_H

#include "arcvm.h"
#include "vmm/config.h"

#include <pthread.h>

struct vm;
struct mmds;

struct arcvm {
    pthread_mutex_t lock;  /* serializes calls; never held while waiting for a stop */
    struct vm_config cfg;  /* the configuration until the VM exists */
    struct vm *vm;         /* NULL until arcvm_start() or arcvm_snapshot_load() */
    struct mmds *mmds;     /* the metadata service's store (lib/mmds.c); the
                            * NICs named in arcvm_set_mmds() borrow it */
    char err[1024];        /* arcvm_last_error() */
};

/* Record @fmt as the last error and return @err. */
int lib_fail(arcvm *h, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Firecracker's rate limiter as the core's configuration. */
struct rate_limiter_config lib_rl_config(const struct arcvm_rate_limiter *rl);
/* The VM, or NULL with the last error "cannot @what: the VM is not started". */
struct vm *lib_started(arcvm *h, const char *what);

#endif
