/* args.h - arcvm-jailer's command line and the pure helpers around it: flag
 * parsing and validation, path building, /proc/mounts and ELF checks. No
 * system calls here, so every function is unit-tested (test_jailer.c). */
#ifndef ARCVM_JAILER_ARGS_H
#define ARCVM_JAILER_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JAILER_ID_MAX          64 /* Firecracker's limit on --id */
#define JAILER_MAX_CGROUPS     32 /* --cgroup given more often is surely a mistake */
#define JAILER_CGROUP_NAME_MAX 64
#define JAILER_DEFAULT_BASE    "/srv/jailer"
#define JAILER_DEFAULT_NOFILE  2048 /* Firecracker's no-file limit when none is given */

/* One --cgroup FILE=VALUE: @value points into argv. */
struct jailer_cgroup {
    char file[JAILER_CGROUP_NAME_MAX];
    const char *value;
};

/* Everything the flags say; strings point into argv. */
struct jailer_args {
    const char *id, *exec_file, *chroot_base, *netns, *parent_cgroup;
    uid_t uid;
    gid_t gid;
    int cgroup_version; /* 1 (Firecracker's default) or 2 */
    bool daemonize, new_pid_ns, help, version;
    struct jailer_cgroup cgroups[JAILER_MAX_CGROUPS];
    size_t n_cgroups;
    bool have_fsize;
    uint64_t fsize;  /* --resource-limit fsize=N: RLIMIT_FSIZE */
    uint64_t nofile; /* --resource-limit no-file=N: RLIMIT_NOFILE */
    char **extra;    /* the arguments after "--", for the exec file */
    int n_extra;
};

/* Parse and validate argv (argv[0] is the program) into @a. Returns 0, or -1
 * with one sentence in @err. With --help or --version set, the required
 * flags are not checked. */
int jailer_parse(int argc, char **argv, struct jailer_args *a, char *err, size_t errlen);

/* True if @id is 1-64 characters, each alphanumeric or '-'. */
bool jailer_id_valid(const char *id);

/* Parse a decimal uid or gid: 0 .. 2^32-2 ((uid_t)-1 means "unchanged" to
 * the kernel). Returns 0 or -1. */
int jailer_parse_id_number(const char *s, uint32_t *out);

/* Split "FILE=VALUE" into @c; FILE is "controller.name" in lower case,
 * digits and '_' (so never a path). Returns 0 or -1 with @err. */
int jailer_parse_cgroup(const char *s, struct jailer_cgroup *c, char *err, size_t errlen);

/* Apply "RESOURCE=VALUE" (fsize, no-file) to @a. Returns 0 or -1 with @err. */
int jailer_parse_rlimit(const char *s, struct jailer_args *a, char *err, size_t errlen);

/* True if @p is a relative path of plain names ([A-Za-z0-9._-]+, never "."
 * or ".."), joined by single '/': a safe --parent-cgroup. */
bool jailer_relpath_valid(const char *p);

/* The last component of @path ("arcvm" for "/usr/bin/arcvm"), or NULL if
 * it has none that can name a file (empty, ".", "..", ends in '/'). */
const char *jailer_exec_name(const char *path);

/* Write "a/b/c" into @out, with a single '/' between parts whatever
 * trailing slashes @a has. Returns 0, or -1 if it does not fit. */
int jailer_join3(char *out, size_t len, const char *a, const char *b, const char *c);

/* Write one sentence (no newline) into @err; returns -1 for the caller
 * to return. */
int jailer_errf(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* snprintf for paths: 0, or -1 if the result did not fit in @len. */
int jailer_pathf(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The mount point of the first cgroup2 file system in @mounts (the text of
 * /proc/mounts), octal escapes decoded, into @out. Returns 0, or -1 if
 * there is none. */
int jailer_cgroup2_root(const char *mounts, char *out, size_t len);

/* The cgroup v2 path of this process from @text (/proc/self/cgroup: the
 * "0::/path" line) into @out. Returns 0 or -1. */
int jailer_own_cgroup(const char *text, char *out, size_t len);

/* Classify the first @len bytes of an executable: 1 for an ELF file without
 * a program interpreter (static, can run in an empty chroot), 0 for a
 * dynamically linked ELF, -1 for anything else (scripts, truncated headers). */
int jailer_elf_static(const void *buf, size_t len);

#endif
