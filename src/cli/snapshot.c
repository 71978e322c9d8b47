/* snapshot.c - the command line's snapshot commands: `arcvm restore` (a
 * saved VM back on the console, run as `arcvm run` runs a fresh one) and
 * `arcvm snapshot-merge` (Diff snapshots onto their base). */
#include "cli/cli.h"

#include "lib/internal.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_STATE = 256, OPT_MEM, OPT_UFFD, OPT_CLOCK_REALTIME, OPT_NET_OVERRIDE, OPT_VSOCK_UDS,
       OPT_CONSOLE };

static const struct option restore_opts[] = {
    {"state", required_argument, NULL, OPT_STATE},
    {"mem", required_argument, NULL, OPT_MEM},
    {"uffd", required_argument, NULL, OPT_UFFD},
    {"clock-realtime", no_argument, NULL, OPT_CLOCK_REALTIME},
    {"net-override", required_argument, NULL, OPT_NET_OVERRIDE},
    {"vsock-uds", required_argument, NULL, OPT_VSOCK_UDS},
    {"console", required_argument, NULL, OPT_CONSOLE},
    CLI_COMMON_OPTIONS,
};

struct restore_args {
    struct arcvm_snapshot_load load;
    struct arcvm_net_override nets[ARCVM_MAX_NETS];
    char net_buf[ARCVM_MAX_NETS][256];
    bool no_console;
    struct cli_common common;
};

/* --net-override ID=TAP */
static void net_override(struct restore_args *a, const char *spec)
{
    unsigned n = a->load.nnet_overrides;
    if (n == ARCVM_MAX_NETS)
        die_usage("at most %d --net-override options", ARCVM_MAX_NETS);
    char *b = a->net_buf[n];
    if (snprintf(b, sizeof(a->net_buf[n]), "%s", spec) >= (int)sizeof(a->net_buf[n]))
        die_usage("--net-override '%s': too long", spec);
    char *eq = strchr(b, '=');
    if (!eq || eq == b || !eq[1])
        die_usage("--net-override '%s': give ID=TAP, e.g. eth0=tap1", spec);
    *eq = 0;
    a->nets[n] = (struct arcvm_net_override){b, eq + 1};
    a->load.nnet_overrides = n + 1;
}

static void parse_restore(int argc, char **argv, struct restore_args *a)
{
    a->load.net_overrides = a->nets;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", restore_opts, NULL)) != -1) {
        switch (c) {
        case OPT_STATE: a->load.state_path = optarg; break;
        case OPT_MEM: a->load.mem_path = optarg; break;
        case OPT_UFFD: a->load.uffd_path = optarg; break;
        case OPT_CLOCK_REALTIME: a->load.clock_realtime = 1; break;
        case OPT_NET_OVERRIDE: net_override(a, optarg); break;
        case OPT_VSOCK_UDS: a->load.vsock_uds_path = optarg; break;
        case OPT_CONSOLE:
            if (!strcmp(optarg, "none"))
                a->no_console = true;
            else if (strcmp(optarg, "serial") && strcmp(optarg, "virtio"))
                die_usage("--console '%s': choose serial, virtio or none (the guest's console "
                          "device is the one it was saved with)", optarg);
            break;
        case 'h':
            printf("Usage: arcvm restore --state PATH --mem PATH [options] (see arcvm --help)\n");
            exit(0);
        default:
            if (!cli_common_option(c, optarg, &a->common))
                cli_bad_option(argv, "restore");
        }
    }
    cli_no_arguments(argc, argv);
    if (!a->load.state_path || !a->load.mem_path == !a->load.uffd_path)
        die_usage("restore needs the snapshot's state and its memory: --state PATH and either "
                  "--mem PATH or --uffd SOCKET");
    /* Running is what a restore from the command line is for. */
    a->load.resume = 1;
}

static int start_restore(arcvm *vm, const void *arg)
{
    return arcvm_snapshot_load(vm, arg);
}

int cli_restore(int argc, char **argv)
{
    static struct restore_args a; /* the parsed strings live as long as the VM */
    parse_restore(argc, argv, &a);
    arcvm *vm;
    if (arcvm_create(&vm) < 0) {
        fprintf(stderr, "arcvm: error: out of memory\n");
        return EXIT_ERROR;
    }
    bool tty = !a.no_console && isatty(STDIN_FILENO);
    /* The console device is the saved one's; these are the host's ends. */
    int r = a.no_console ? arcvm_set_console(vm, ARCVM_CONSOLE_NONE, -1, -1)
                         : arcvm_set_console(vm, ARCVM_CONSOLE_SERIAL, STDIN_FILENO, STDOUT_FILENO);
    if (!r)
        r = arcvm_set_console_escape(vm, tty);
    if (!r)
        r = cli_common_apply(vm, &a.common);
    if (r < 0) {
        fprintf(stderr, "arcvm: error: %s\n", arcvm_last_error(vm));
        arcvm_destroy(vm);
        return EXIT_ERROR;
    }
    return cli_run_vm(vm, tty, start_restore, &a.load, cli_snapshot_to(&a.common));
}

/* `arcvm snapshot-merge --base MEM --diff STATE,MEM [--diff ...] --state-out STATE` */
int cli_snapshot_merge(int argc, char **argv)
{
    enum { OPT_BASE = 256, OPT_DIFF, OPT_STATE_OUT };
    static const struct option opts[] = {
        {"base", required_argument, NULL, OPT_BASE},
        {"diff", required_argument, NULL, OPT_DIFF},
        {"state-out", required_argument, NULL, OPT_STATE_OUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    enum { MAX_DIFFS = 64 };
    const char *base = NULL, *out = NULL, *states[MAX_DIFFS], *mems[MAX_DIFFS];
    unsigned n = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_BASE: base = optarg; break;
        case OPT_STATE_OUT: out = optarg; break;
        case OPT_DIFF: {
            char *comma = strchr(optarg, ',');
            if (!comma || comma == optarg || !comma[1])
                die_usage("--diff '%s': give STATE,MEM (a Diff snapshot's two files)", optarg);
            if (n == MAX_DIFFS)
                die_usage("at most %d --diff options", MAX_DIFFS);
            *comma = 0;
            states[n] = optarg;
            mems[n++] = comma + 1;
            break;
        }
        case 'h':
            printf("Usage: arcvm snapshot-merge --base MEM --diff STATE,MEM [--diff ...] "
                   "--state-out STATE (see arcvm --help)\n");
            exit(0);
        default: cli_bad_option(argv, "snapshot-merge");
        }
    }
    cli_no_arguments(argc, argv);
    if (!base || !out || !n)
        die_usage("snapshot-merge needs --base MEM, at least one --diff STATE,MEM and "
                  "--state-out STATE");
    char err[1024];
    if (arcvm_snapshot_merge(base, n, states, mems, out, err, sizeof(err)) < 0) {
        fprintf(stderr, "arcvm: error: %s\n", err);
        return EXIT_ERROR;
    }
    fprintf(stderr, "arcvm: merged %u Diff snapshot%s onto %s; restore with: arcvm restore "
            "--state %s --mem %s\n", n, n == 1 ? "" : "s", base, out, base);
    return 0;
}
