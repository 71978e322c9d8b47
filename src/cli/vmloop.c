/* vmloop.c - running one VM from the command line: the terminal, the
 * process's signals, snapshots on request, and the guest's fate as an exit
 * status (cli.h). */
#include "cli/cli.h"

#include "lib/internal.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

void die_usage(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "arcvm: error: %s (see arcvm --help)\n", msg);
    exit(EXIT_ERROR);
}

/* The terminal is restored on every way out of main(). */
static struct termios saved_tio;
static bool tio_saved;

static void restore_terminal(void)
{
    if (tio_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    tio_saved = false;
}

static void raw_terminal(void)
{
    if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
        return;
    struct termios t = saved_tio;
    /* Raw: keys (Ctrl-C included) go to the guest; its tty does echo and
     * line editing. */
    cfmakeraw(&t);
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
        tio_saved = true;
        atexit(restore_terminal);
    }
}

/* SIGUSR1: one line per vCPU on stderr (raw terminal or not: \r\n). */
static void print_vcpus(arcvm *vm)
{
    enum { MAX = 256 };
    struct arcvm_vcpu_info *v = calloc(MAX, sizeof(*v));
    int n = v ? arcvm_get_vcpu_info(vm, v, MAX) : -ENOMEM;
    if (n < 0)
        fprintf(stderr, "arcvm: vCPU report: %s\r\n", arcvm_last_error(vm));
    for (int i = 0; i < n && i < MAX; i++) {
        char line[256];
        arcvm_vcpu_info_format(&v[i], line, sizeof(line));
        fprintf(stderr, "arcvm: %s\r\n", line);
    }
    free(v);
}

bool cli_common_option(int c, const char *arg, struct cli_common *o)
{
    int level;
    switch (c) {
    case CLI_OPT_LOG_LEVEL:
        if (arcvm_log_level_parse(arg, &level) < 0)
            die_usage("--log-level '%s': choose error, warn, info or debug", arg);
        arcvm_log_set_level(level);
        return true;
    case CLI_OPT_KVM_DEVICE: o->kvm_device = arg; return true;
    case CLI_OPT_NO_KVM_CHECK: o->no_kvm_check = true; return true;
    case CLI_OPT_NO_SECCOMP: o->no_seccomp = true; return true;
    case CLI_OPT_SECCOMP_FILTER: o->seccomp_filter = arg; return true;
    case CLI_OPT_SNAPSHOT_TO: cli_parse_snapshot_to(arg, &o->snapshot_to); return true;
    default: return false;
    }
}

int cli_common_apply(arcvm *vm, const struct cli_common *o)
{
    int r = o->kvm_device ? arcvm_set_hypervisor_device(vm, o->kvm_device) : 0;
    if (r == 0 && (o->no_seccomp || o->seccomp_filter))
        r = arcvm_set_seccomp(vm, !o->no_seccomp, o->seccomp_filter);
    return r == 0 && o->no_kvm_check ? arcvm_set_kvm_check(vm, 0) : r;
}

const struct cli_snapshot_to *cli_snapshot_to(const struct cli_common *o)
{
    return o->snapshot_to.state ? &o->snapshot_to : NULL;
}

void cli_bad_option(char **argv, const char *cmd)
{
    if (optopt)
        die_usage("option '%s' needs a value", argv[optind - 1]);
    die_usage("unknown option '%s' for %s", argv[optind - 1], cmd);
}

void cli_no_arguments(int argc, char **argv)
{
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
}

void cli_parse_snapshot_to(const char *spec, struct cli_snapshot_to *o)
{
    memset(o, 0, sizeof(*o));
    if (snprintf(o->buf, sizeof(o->buf), "%s", spec) >= (int)sizeof(o->buf))
        die_usage("--snapshot-to: too long");
    char *mem = strchr(o->buf, ',');
    if (!mem || mem == o->buf || !mem[1])
        die_usage("--snapshot-to '%s': give STATE,MEM[,resume] (two file paths)", spec);
    *mem++ = 0;
    char *opt = strchr(mem, ',');
    if (opt) {
        *opt++ = 0;
        if (strcmp(opt, "resume"))
            die_usage("--snapshot-to '%s': the only option after the paths is 'resume'", spec);
        o->resume = true;
    }
    if (!*mem)
        die_usage("--snapshot-to '%s': give STATE,MEM[,resume] (two file paths)", spec);
    o->state = o->buf;
    o->mem = mem;
}

/* SIGUSR2: pause, save, then stop (a suspend) or resume. A failed save
 * resumes the guest: nothing is lost. */
static void save_snapshot(arcvm *vm, const struct cli_snapshot_to *snap)
{
    if (!snap) {
        fprintf(stderr, "arcvm: SIGUSR2 saves a snapshot only with --snapshot-to STATE,MEM\r\n");
        return;
    }
    if (arcvm_pause(vm) < 0) {
        fprintf(stderr, "arcvm: error: snapshot: %s\r\n", arcvm_last_error(vm));
        return;
    }
    bool ok = arcvm_snapshot_create(vm, ARCVM_SNAPSHOT_FULL, snap->state, snap->mem) == 0;
    if (!ok)
        fprintf(stderr, "arcvm: error: snapshot: %s; the VM runs on\r\n", arcvm_last_error(vm));
    else if (snap->resume)
        fprintf(stderr, "arcvm: saved the VM to %s and %s\r\n", snap->state, snap->mem);
    else
        fprintf(stderr, "arcvm: saved the VM; restore it with: arcvm restore --state %s --mem %s"
                "\r\n", snap->state, snap->mem);
    if (!ok || snap->resume)
        arcvm_resume(vm);
    else
        arcvm_stop(vm);
}

int cli_run_vm(arcvm *vm, bool tty, int (*start)(arcvm *vm, const void *arg), const void *arg,
               const struct cli_snapshot_to *snap)
{
    /* Termination signals are taken synchronously through a signalfd; block
     * them before any VM thread exists so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGQUIT);
    sigaddset(&sigs, SIGUSR1); /* the vCPU report */
    sigaddset(&sigs, SIGUSR2); /* save a snapshot */
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is an error to report, not a death */

    if (tty)
        raw_terminal();
    if (start(vm, arg) < 0) {
        restore_terminal();
        fprintf(stderr, "arcvm: error: %s\n", arcvm_last_error(vm));
        arcvm_destroy(vm);
        return EXIT_ERROR;
    }
    /* From here this thread only controls the VM: its own filter. */
    if (arcvm_seccomp_thread(vm, ARCVM_THREAD_VMM) < 0) {
        fprintf(stderr, "arcvm: error: %s\r\n", arcvm_last_error(vm));
        arcvm_stop(vm);
    }

    int killed_by = 0;
    struct pollfd pfd[2] = {{arcvm_state_fd(vm), POLLIN, 0}, {sfd, POLLIN, 0}};
    for (;;) {
        enum arcvm_state s = arcvm_get_state(vm);
        if (s == ARCVM_STATE_STOPPING || s == ARCVM_STATE_STOPPED || s == ARCVM_STATE_FAILED)
            break;
        if (poll(pfd, sfd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents & POLLIN) {
            uint64_t v;
            (void)!read(pfd[0].fd, &v, sizeof(v));
        }
        if (sfd >= 0 && (pfd[1].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) != sizeof(si))
                continue;
            if (si.ssi_signo == SIGUSR1) {
                print_vcpus(vm);
            } else if (si.ssi_signo == SIGUSR2) {
                save_snapshot(vm, snap);
            } else if (!killed_by) {
                killed_by = (int)si.ssi_signo;
                arcvm_stop(vm);
            }
        }
    }
    struct arcvm_exit ex;
    arcvm_wait(vm, &ex);
    restore_terminal();
    arcvm_destroy(vm);
    if (sfd >= 0)
        close(sfd);

    switch (ex.reason) {
    case ARCVM_EXIT_POWEROFF:
        return EXIT_POWEROFF;
    case ARCVM_EXIT_REBOOT:
        arcvm_log(ARCVM_LOG_INFO, "%s", ex.message);
        return EXIT_REBOOT;
    case ARCVM_EXIT_CRASH:
        arcvm_log(ARCVM_LOG_ERROR, "guest crashed: %s", ex.message);
        return EXIT_CRASH;
    case ARCVM_EXIT_STOPPED:
        return killed_by ? 128 + killed_by : EXIT_POWEROFF;
    default:
        arcvm_log(ARCVM_LOG_ERROR, "%s", ex.message[0] ? ex.message : "the VM failed");
        return EXIT_ERROR;
    }
}

