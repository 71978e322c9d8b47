/* internal.h - the library's configuration interface for arcvm's own front
 * ends (the CLI; the API server uses only arcvm.h). Everything a front end
 * parses from text goes through here, so each option has one parser, the
 * library's, and the front end never includes a VMM header.
 */
#ifndef ARCVM_LIB_INTERNAL_H
#define ARCVM_LIB_INTERNAL_H

#include "arcvm.h"

#include <stdint.h>

/* Measure the boot timer from the front end's own start (CLOCK_MONOTONIC
 * and process CPU time, microseconds) instead of VM creation. */
void arcvm_set_start_time(arcvm *vm, uint64_t wall_us, uint64_t cpu_us);

/* Guest RAM when none is set, and the least a guest gets. */
uint64_t arcvm_default_memory(void);

/* A memory size: "512M", "1G", "2GiB"; a bare number is MiB. 0, -EINVAL
 * for garbage, -ERANGE for a size that overflows. */
int arcvm_parse_size(const char *s, uint64_t *bytes);
/* A decimal number without sign, space or suffix. 0 or -EINVAL. */
int arcvm_parse_uint(const char *s, unsigned *out);
/* A huge_pages setting in Firecracker's words ("None", "2M",
 * "Transparent", any case). 0 or -EINVAL. */
int arcvm_parse_huge_pages(const char *s, enum arcvm_huge_pages *pages);
/* Its name as Firecracker writes it. */
const char *arcvm_huge_pages_name(enum arcvm_huge_pages pages);

/* The command line's device options, parsed by the library (each sets
 * arcvm_last_error() on -EINVAL / -E2BIG):
 * "PATH[,ro][,id=NAME]", "cid=N,uds=PATH",
 * "SIZE[,deflate-on-oom][,stats=SECONDS][,free-page-reporting]",
 * "HOSTDIR:TAG[,ro]". */
int arcvm_add_disk_spec(arcvm *vm, const char *spec);
int arcvm_add_share_spec(arcvm *vm, const char *spec);
/* "PATH[,ro][,root][,id=ID]" (lib/pmem.c). */
int arcvm_add_pmem_spec(arcvm *vm, const char *spec);
int arcvm_set_vsock_spec(arcvm *vm, const char *spec);
int arcvm_set_balloon_spec(arcvm *vm, const char *spec);
/* "SIZE[,block=SIZE][,slot=SIZE][,requested=SIZE]": memory hotplug. */
int arcvm_set_memory_hotplug_spec(arcvm *vm, const char *spec);

/* The levels of arcvm_log_set_level(). */
enum { ARCVM_LOG_ERROR, ARCVM_LOG_WARN, ARCVM_LOG_INFO, ARCVM_LOG_DEBUG };
/* "error", "warn", "info", "debug" -> ARCVM_LOG_*. */
int arcvm_log_level_parse(const char *s, int *level);
/* Log @fmt at @level (ARCVM_LOG_*) through the library's sink, with
 * its "arcvm: <level>: " prefix. */
void arcvm_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
