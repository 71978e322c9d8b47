/* cgroup.h - the jail's cgroup v2: <cgroup2 mount>/<parent>/<id>, its
 * controllers enabled on the way down, the --cgroup values written, this
 * process moved in; undone when a later step fails. */
#ifndef ARCVM_JAILER_CGROUP_H
#define ARCVM_JAILER_CGROUP_H

#include "jailer/args.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct jail_cgroup {
    char dir[PATH_MAX];           /* <root>/<parent>/<id> */
    char first_created[PATH_MAX]; /* the shallowest parent of dir we made, or "" */
    char home_procs[PATH_MAX];    /* cgroup.procs of the cgroup we came from */
    bool created, joined;
};

/* Create the cgroup for jail @id under @parent (relative to the cgroup2
 * mount found in /proc/mounts), write @vals into it and move the calling
 * process in. Returns 0, or -1 with one sentence in @err; on failure
 * nothing is left behind. */
int cgroup_setup(struct jail_cgroup *cg, const char *parent, const char *id,
                 const struct jailer_cgroup *vals, size_t n, char *err, size_t errlen);

/* Move the calling process back where it came from and remove what
 * cgroup_setup created. Path-based: call it in the host's mount namespace.
 * Safe to call twice, and on a zeroed struct. */
void cgroup_remove(struct jail_cgroup *cg);

#endif
