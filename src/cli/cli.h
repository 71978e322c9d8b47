/* cli.h - what the files of the command line share: exit statuses, usage
 * errors, and running a VM under the terminal and the process's signals
 * (vmloop.c). Only the CLI includes this. */
#ifndef ARCVM_CLI_H
#define ARCVM_CLI_H

#include "arcvm.h"

#include <stdbool.h>

/* Exit statuses (documented in README.md and --help). */
enum {
    EXIT_POWEROFF = 0, /* the guest powered off (or was saved with --snapshot-to) */
    EXIT_ERROR = 1,    /* bad usage, bad input or a host failure */
    EXIT_REBOOT = 2,   /* the guest rebooted (also a panic with panic=N) */
    EXIT_CRASH = 3,    /* triple fault or emulation failure */
};

/* "arcvm: error: MSG (see arcvm --help)" and exit 1. */
void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* After getopt_long(): exit through die_usage() for the option it refused
 * (unknown, or missing its value) or for any argument left over; @cmd
 * names the command in the message. */
void cli_bad_option(char **argv, const char *cmd) __attribute__((noreturn));
void cli_no_arguments(int argc, char **argv);

/* --snapshot-to STATE,MEM[,resume]: where SIGUSR2 saves the VM, and
 * whether it runs on afterwards (default: it stops, like a suspend). */
struct cli_snapshot_to {
    const char *state, *mem;
    bool resume;
    char buf[4096]; /* the parsed copy the paths point into */
};
/* Parse @spec into @out; exits through die_usage() on a bad one. */
void cli_parse_snapshot_to(const char *spec, struct cli_snapshot_to *out);

/* The options `run` and `restore` share: their ids (below the commands'
 * own, which start at 256), their rows for the getopt table (last in it:
 * --help and the terminator included), one parser and one way to apply
 * them. */
enum {
    CLI_OPT_LOG_LEVEL = 200,
    CLI_OPT_KVM_DEVICE,
    CLI_OPT_NO_KVM_CHECK,
    CLI_OPT_SNAPSHOT_TO,
    CLI_OPT_NO_SECCOMP,
    CLI_OPT_SECCOMP_FILTER
};
#define CLI_COMMON_OPTIONS                                                                         \
    {"log-level", required_argument, NULL, CLI_OPT_LOG_LEVEL},                                   \
        {"kvm-device", required_argument, NULL, CLI_OPT_KVM_DEVICE},                             \
        {"no-kvm-check", no_argument, NULL, CLI_OPT_NO_KVM_CHECK},                               \
        {"snapshot-to", required_argument, NULL, CLI_OPT_SNAPSHOT_TO},                           \
        {"no-seccomp", no_argument, NULL, CLI_OPT_NO_SECCOMP},                                   \
        {"seccomp-filter", required_argument, NULL, CLI_OPT_SECCOMP_FILTER},                     \
        {"help", no_argument, NULL, 'h'}, { NULL, 0, NULL, 0 }
struct cli_common {
    const char *kvm_device;
    bool no_kvm_check;
    bool no_seccomp;
    const char *seccomp_filter;
    struct cli_snapshot_to snapshot_to;
};
/* Take option @c (with @arg) into @o: false when it is not a common one. */
bool cli_common_option(int c, const char *arg, struct cli_common *o);
/* Give @vm the hypervisor settings of @o; 0 or the library's -errno. */
int cli_common_apply(arcvm *vm, const struct cli_common *o);
/* Where SIGUSR2 saves, for cli_run_vm(): NULL without --snapshot-to. */
const struct cli_snapshot_to *cli_snapshot_to(const struct cli_common *o);

/* Start @vm with @start(@vm, @arg) (arcvm_start or a snapshot load) and
 * run it to its end: raw terminal when @tty, SIGINT/TERM/HUP/QUIT stop it,
 * SIGUSR1 prints the vCPU report, SIGUSR2 saves it to @snap (NULL: refused
 * with a message). Destroys @vm; returns the exit status. */
int cli_run_vm(arcvm *vm, bool tty, int (*start)(arcvm *vm, const void *arg), const void *arg,
               const struct cli_snapshot_to *snap);

/* `arcvm restore ...` and `arcvm snapshot-merge ...` (snapshot.c). */
int cli_restore(int argc, char **argv);
int cli_snapshot_merge(int argc, char **argv);

#endif
