/* seccomp.c - the library's side of the per-thread filters (arcvm.h,
 * src/vmm/seccomp.h). */
#include "arcvm.h"

#include "lib/handle.h"
#include "vmm/seccomp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int arcvm_set_seccomp(arcvm *h, int on, const char *filter_file)
{
    pthread_mutex_lock(&h->lock);
    int r = 0;
    char *file = NULL;
    struct seccomp_prog p;
    if (h->vm) {
        r = lib_fail(h, -EBUSY, "seccomp filters are chosen before the VM starts");
    } else if (filter_file && !(file = strdup(filter_file))) {
        r = lib_fail(h, -ENOMEM, "out of memory");
    } else if (filter_file &&
               (r = seccomp_prog_build(&p, SECCOMP_VCPU, file, h->err, sizeof(h->err))) < 0) {
        free(file); /* a bad file is refused now, not at the start */
    } else {
        if (filter_file)
            seccomp_prog_release(&p);
        h->cfg.no_seccomp = !on;
        free(h->cfg.seccomp_file);
        h->cfg.seccomp_file = file;
    }
    pthread_mutex_unlock(&h->lock);
    return r;
}

int arcvm_seccomp_thread(arcvm *h, enum arcvm_thread kind)
{
    if (kind != ARCVM_THREAD_VMM && kind != ARCVM_THREAD_API)
        return -EINVAL;
    pthread_mutex_lock(&h->lock);
    int r = 0;
    if (!h->cfg.no_seccomp)
        r = seccomp_thread(kind == ARCVM_THREAD_VMM ? SECCOMP_VMM : SECCOMP_API,
                           h->cfg.seccomp_file, h->err, sizeof(h->err));
    pthread_mutex_unlock(&h->lock);
    return r;
}
