/* jail.h - the jail's directory tree: <base>/<exec name>/<id>/root with a
 * copy of the exec file and the device nodes the VMM needs, and its removal
 * when a later step fails. */
#ifndef ARCVM_JAILER_JAIL_H
#define ARCVM_JAILER_JAIL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct jail {
    char dir[PATH_MAX];           /* <base>/<exec name>/<id>: ours alone */
    char root[PATH_MAX];          /* dir/root, the future "/" */
    char first_created[PATH_MAX]; /* the shallowest parent of dir we made, or "" */
    bool dir_created;
};

/* Create <base>/<name>/<id>/root (and any missing parent), refusing if
 * <base>/<name>/<id> exists: that is another jail with the same id. Returns
 * 0, or -1 with one sentence in @err; on failure nothing is left behind. */
int jail_create(struct jail *j, const char *base, const char *name, const char *id, char *err,
                size_t errlen);

/* Copy the executable @src to <root>/<name>, mode 0755, owned by root.
 * Returns 0 or -1 with @err. */
int jail_copy_exec(const struct jail *j, const char *src, const char *name, char *err,
                   size_t errlen);

/* Make <root>/dev/kvm, <root>/dev/net/tun and (if the host has one)
 * <root>/dev/userfaultfd with the host's numbers, mode 0600, and <root>/run;
 * give them and <root> itself to @uid:@gid. Returns 0 or -1 with @err. */
int jail_populate(const struct jail *j, uid_t uid, gid_t gid, char *err, size_t errlen);

/* Remove everything jail_create made, and what was put inside it since.
 * Path-based: call it in the host's mount namespace. Safe to call twice. */
void jail_remove(struct jail *j);

/* mkdir -p @path (mode 0755). Records in @first (PATH_MAX bytes) the
 * shallowest directory it created, if @first is "" so far. Returns 0 or
 * -errno. */
int jail_mkdirs(const char *path, char *first);

/* rmdir @path and its parents up to and including @first (if @path is
 * under it); stops at the first that is not empty. */
void jail_rmdirs(const char *path, const char *first);

#endif
