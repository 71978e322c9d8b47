/* main.c - the arcvm command line: parses flags into library calls, owns the
 * terminal and the process's signals, and turns the guest's fate into an
 * exit status. No VM logic lives here.
 */
#include "arcvm.h"

#include "api/api_client.h"
#include "api/fc_main.h"
#include "cli/cli.h"
#include "lib/internal.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>


static void usage(FILE *f)
{
    fprintf(f,
            "Usage: arcvm run --kernel PATH [options]\n"
            "       arcvm restore --state PATH --mem PATH [options]\n"
            "       arcvm snapshot-merge --base MEM --diff STATE,MEM... --state-out STATE\n"
            "       arcvm check [--json] [--kvm-device PATH] [--kernel-cache DIR|off]\n"
            "       arcvm vcpus --api-sock PATH\n"
            "       arcvm [firecracker] --api-sock PATH | --config-file FILE [...]\n"
            "       arcvm --help | --version\n"
            "\n"
            "Boot a Linux kernel in a KVM virtual machine.\n"
            "\n"
            "Options for run:\n"
            "  --kernel PATH        the kernel to boot (required): %s\n"
            "  --initrd PATH        initramfs / initrd image\n"
            "  --kernel-cache DIR|off\n"
            "                       where a compressed kernel is kept unpacked, so later\n"
            "                       boots skip unpacking it\n"
            "                       (default ~/.cache/arcvm/kernels; off: never)\n"
            "  --cmdline TEXT       kernel command line, appended to the defaults\n"
            "                       (%s)\n"
            "  --cpus N             number of vCPUs (default 1)\n"
            "  --memory SIZE        guest RAM, e.g. 512M or 1G; a bare number is MiB\n"
            "                       (default 256M, at least 64M)\n"
            "  --huge-pages MODE    what backs guest RAM: none (default, 4 KiB pages),\n"
            "                       2M (hugetlbfs pages, all reserved from the host's\n"
            "                       pool at start) or transparent (THP advised)\n"
            "  --console MODE       serial (default): the guest's ttyS0 on stdin/stdout;\n"
            "                       virtio: the guest's hvc0 (virtio-console) instead;\n"
            "                       none: no console\n"
            "  --disk PATH[,ro][,id=NAME]\n"
            "                       a virtio-blk disk on a raw image (repeat for more);\n"
            "                       ro: read-only; id: serial number the guest sees\n"
            "  --rng                a virtio-rng entropy device (host getrandom)\n"
            "  --net tap=NAME[,mac=MAC]\n"
            "  --net user[,mac=MAC][,hostfwd=tcp::HOSTPORT-:GUESTPORT]...\n"
            "                       a virtio-net NIC on a TAP interface, or on user-mode\n"
            "                       networking without root (DHCP, DNS, outbound TCP/UDP,\n"
            "                       port forwards into the guest); repeat for more NICs\n"
            "  --vsock cid=N,uds=PATH\n"
            "                       virtio-vsock, hybrid like Firecracker's: host programs\n"
            "                       connect to PATH and send 'CONNECT <port>'\n"
            "  --balloon SIZE[,deflate-on-oom][,stats=SECONDS][,free-page-reporting]\n"
            "                       a virtio-balloon inflated to SIZE at start\n"
            "  --memory-hotplug SIZE[,block=SIZE][,slot=SIZE][,requested=SIZE]\n"
            "                       a virtio-mem region of SIZE above RAM, plugged by the\n"
            "                       guest in blocks (default 2M) up to requested= (default\n"
            "                       0); the guest kernel wants memhp_default_state=online_movable\n"
            "  --share HOSTDIR:TAG[,ro]\n"
            "                       share a host directory through virtio-fs (repeat for\n"
            "                       more); in the guest: mount -t virtiofs TAG /mnt\n"
            "  --pmem PATH[,ro][,root][,id=ID]\n"
            "                       map the file PATH into the guest as virtio-pmem\n"
            "                       (/dev/pmem0, /dev/pmem1, ... in order; repeat for\n"
            "                       more); root adds root=/dev/pmemN to the command line\n"
            "  --virtio-cmdline     also list virtio devices as virtio_mmio.device= on\n"
            "                       the kernel command line (for kernels that want it)\n"
            "  --cpu-affinity VCPU:CPUS\n"
            "                       pin vCPU number VCPU (or 'all') to host CPUs, e.g.\n"
            "                       0:2 or all:0-3,6; repeat for more vCPUs\n"
            "  --boot-timer         log the time until the guest writes 123 to MMIO\n"
            "                       0xc0000000 (Firecracker's boot timer)\n"
            "  --log-level LEVEL    error, warn (default), info or debug\n"
            "  --kvm-device PATH    hypervisor device node (default /dev/kvm)\n"
            "  --no-kvm-check       start even where `arcvm check` says KVM cannot run a\n"
            "                       stock guest (for experts)\n"
            "  --snapshot-to STATE,MEM[,resume]\n"
            "                       on SIGUSR2, save the VM to these two files (state and\n"
            "                       RAM) and stop, or run on with 'resume'\n"
            "  --no-seccomp         run without the per-thread system call filters\n"
            "  --seccomp-filter FILE  filters from FILE (Firecracker's compiled format)\n"
            "                       instead of the built-in ones\n"
            "\n"
            "On a terminal, the console is raw; type Ctrl-A x to stop the VM.\n"
            "SIGUSR1 prints what each vCPU is doing to stderr; the VM keeps running.\n"
            "\n"
            "arcvm restore --state PATH --mem PATH [options]: bring a saved VM back and\n"
            "run it as 'run' does (same console, signals and exit status). Options:\n"
            "  --uffd SOCKET        instead of --mem: the guest's RAM comes from the page-\n"
            "                       fault handler on SOCKET (arcvm-uffd-handler SOCKET MEM)\n"
            "  --clock-realtime     advance the guest clock by the time since the save\n"
            "  --net-override ID=TAP  put network interface ID on another TAP device\n"
            "  --vsock-uds PATH     the vsock device's host socket instead of the saved one\n"
            "  --console MODE       serial/virtio (default): on stdin/stdout; none\n"
            "  --snapshot-to, --log-level, --kvm-device, --no-kvm-check, --no-seccomp,\n"
            "  --seccomp-filter as for run\n"
            "\n"
            "arcvm snapshot-merge --base MEM --diff STATE,MEM [--diff ...] --state-out STATE:\n"
            "apply Diff snapshots (oldest first) onto the memory file of the snapshot they\n"
            "follow, and write a state that restores with it.\n"
            "\n"
            "arcvm check: can this host run VMs? One PASS/WARN/FAIL line per requirement\n"
            "with what to do; exit 0 when a stock Linux guest can run here, 1 if not.\n"
            "arcvm vcpus: what each vCPU of an arcvm serving --api-sock PATH is doing.\n"
            "\n"
            "Firecracker mode: with Firecracker's process flags (--api-sock, --config-file,\n"
            "--no-api, --id, --log-path, --level, --metrics-path, --boot-timer), or as\n"
            "'arcvm firecracker ...', or run under the name 'firecracker', arcvm serves\n"
            "Firecracker's REST API on a Unix socket (see README.md).\n"
            "\n"
            "Exit status: 0 the guest powered off; 1 bad input or host error;\n"
            "2 the guest rebooted (or panicked); 3 the guest crashed (triple fault,\n"
            "emulation failure); 128+N killed by signal N.\n",
            arcvm_kernel_formats(), arcvm_default_cmdline());
}

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}



enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_CONSOLE,
       OPT_BOOT_TIMER, OPT_DISK, OPT_RNG,
       OPT_VIRTIO_CMDLINE, OPT_CPU_AFFINITY, OPT_NET, OPT_VSOCK, OPT_BALLOON, OPT_MEMHP,
       OPT_KERNEL_CACHE, OPT_JSON, OPT_API_SOCK, OPT_SHARE, OPT_PMEM,
       OPT_HUGE_PAGES };

static const struct option run_opts[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"boot-timer", no_argument, NULL, OPT_BOOT_TIMER},
    {"disk", required_argument, NULL, OPT_DISK},
    {"rng", no_argument, NULL, OPT_RNG},
    {"virtio-cmdline", no_argument, NULL, OPT_VIRTIO_CMDLINE},
    {"cpu-affinity", required_argument, NULL, OPT_CPU_AFFINITY},
    {"net", required_argument, NULL, OPT_NET},
    {"vsock", required_argument, NULL, OPT_VSOCK},
    {"balloon", required_argument, NULL, OPT_BALLOON},
    {"memory-hotplug", required_argument, NULL, OPT_MEMHP},
    {"share", required_argument, NULL, OPT_SHARE},
    {"pmem", required_argument, NULL, OPT_PMEM},
    {"huge-pages", required_argument, NULL, OPT_HUGE_PAGES},
    {"kernel-cache", required_argument, NULL, OPT_KERNEL_CACHE},
    CLI_COMMON_OPTIONS,
};

/* Options applied once all are read (their order on the command line does
 * not matter: an affinity may name a vCPU --cpus adds later). The device
 * options go to the library as they come, which parses them. */
struct run_args {
    const char *kernel, *initrd, *cmdline, *kernel_cache;
    unsigned cpus;
    uint64_t mem;
    enum arcvm_console console;
    bool boot_timer, rng, virtio_cmdline;
    unsigned naffinity;
    const char *affinity[64]; /* VCPU:CPUS */
    struct cli_common common;
};

/* A device option for the library: its own error message on failure. */
static void device_option(arcvm *vm, int r)
{
    if (r < 0)
        die_usage("%s", arcvm_last_error(vm));
}

static void parse_run(int argc, char **argv, struct run_args *a, arcvm *vm)
{
    a->cpus = 1;
    a->mem = arcvm_default_memory();
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", run_opts, NULL)) != -1) {
        switch (c) {
        case OPT_KERNEL: a->kernel = optarg; break;
        case OPT_INITRD: a->initrd = optarg; break;
        case OPT_KERNEL_CACHE:
            if (!*optarg)
                die_usage("--kernel-cache: give a directory, or 'off'");
            a->kernel_cache = optarg;
            break;
        case OPT_CMDLINE: a->cmdline = optarg; break;
        case OPT_CPUS:
            if (arcvm_parse_uint(optarg, &a->cpus) < 0 || a->cpus == 0)
                die_usage("--cpus '%s': give a whole number of vCPUs, 1 or more", optarg);
            break;
        case OPT_MEMORY: {
            int r = arcvm_parse_size(optarg, &a->mem);
            if (r == -ERANGE)
                die_usage("--memory '%s': far too large", optarg);
            if (r < 0)
                die_usage("--memory '%s': give a size such as 512M or 2G", optarg);
            break;
        }
        case OPT_CONSOLE:
            if (!strcmp(optarg, "serial"))
                a->console = ARCVM_CONSOLE_SERIAL;
            else if (!strcmp(optarg, "virtio"))
                a->console = ARCVM_CONSOLE_VIRTIO;
            else if (!strcmp(optarg, "none"))
                a->console = ARCVM_CONSOLE_NONE;
            else
                die_usage("--console '%s': choose serial, virtio or none", optarg);
            break;
        case OPT_DISK: device_option(vm, arcvm_add_disk_spec(vm, optarg)); break;
        case OPT_NET: device_option(vm, arcvm_add_net(vm, optarg)); break;
        case OPT_VSOCK: device_option(vm, arcvm_set_vsock_spec(vm, optarg)); break;
        case OPT_BALLOON: device_option(vm, arcvm_set_balloon_spec(vm, optarg)); break;
        case OPT_MEMHP: device_option(vm, arcvm_set_memory_hotplug_spec(vm, optarg)); break;
        case OPT_SHARE: device_option(vm, arcvm_add_share_spec(vm, optarg)); break;
        case OPT_PMEM: device_option(vm, arcvm_add_pmem_spec(vm, optarg)); break;
        case OPT_HUGE_PAGES: {
            enum arcvm_huge_pages hp;
            if (arcvm_parse_huge_pages(optarg, &hp) < 0)
                die_usage("--huge-pages '%s': choose none, 2M or transparent", optarg);
            device_option(vm, arcvm_set_huge_pages(vm, hp));
            break;
        }
        case OPT_RNG: a->rng = true; break;
        case OPT_VIRTIO_CMDLINE: a->virtio_cmdline = true; break;
        case OPT_CPU_AFFINITY:
            if (a->naffinity == sizeof(a->affinity) / sizeof(a->affinity[0]))
                die_usage("too many --cpu-affinity options");
            a->affinity[a->naffinity++] = optarg;
            break;
        case OPT_BOOT_TIMER: a->boot_timer = true; break;
        case 'h': usage(stdout); exit(0);
        default:
            if (!cli_common_option(c, optarg, &a->common))
                cli_bad_option(argv, "run");
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!a->kernel)
        die_usage("no kernel given: pass --kernel PATH");
}

/* --cpu-affinity VCPU:CPUS, where VCPU is a number or "all". */
static void apply_affinity(arcvm *vm, const char *spec)
{
    const char *colon = strchr(spec, ':');
    char idx[16];
    size_t ilen = colon ? (size_t)(colon - spec) : 0;
    unsigned v = 0;
    if (!colon || ilen == 0 || ilen >= sizeof(idx))
        die_usage("--cpu-affinity '%s': give VCPU:CPUS, e.g. 0:2 or all:0-3", spec);
    memcpy(idx, spec, ilen);
    idx[ilen] = 0;
    bool all = !strcmp(idx, "all");
    if (!all && arcvm_parse_uint(idx, &v) < 0)
        die_usage("--cpu-affinity '%s': '%s' is not a vCPU number or 'all'", spec, idx);
    if (arcvm_set_vcpu_affinity(vm, all ? -1 : (int)v, colon + 1) < 0)
        die_usage("--cpu-affinity '%s': %s", spec, arcvm_last_error(vm));
}

/* The kernel cache directory: --kernel-cache DIR, none with 'off', else
 * $XDG_CACHE_HOME/arcvm/kernels or ~/.cache/arcvm/kernels. False: none. */
static bool default_kernel_cache(const char *opt, char *out, size_t outlen)
{
    if (opt)
        return strcmp(opt, "off") && snprintf(out, outlen, "%s", opt) < (int)outlen;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg == '/')
        n = snprintf(out, outlen, "%s/arcvm/kernels", xdg);
    else if (home && *home == '/')
        n = snprintf(out, outlen, "%s/.cache/arcvm/kernels", home);
    else
        return false;
    return n > 0 && (size_t)n < outlen;
}


static int start_fresh(arcvm *vm, const void *arg)
{
    (void)arg;
    return arcvm_start(vm);
}

static int run(int argc, char **argv)
{
    uint64_t t0_wall = clock_us(CLOCK_MONOTONIC), t0_cpu = clock_us(CLOCK_PROCESS_CPUTIME_ID);
    arcvm *vm;
    if (arcvm_create(&vm) < 0) {
        fprintf(stderr, "arcvm: error: out of memory\n");
        return EXIT_ERROR;
    }
    struct run_args a = {0};
    parse_run(argc, argv, &a, vm);
    arcvm_set_start_time(vm, t0_wall, t0_cpu);
    bool tty = a.console != ARCVM_CONSOLE_NONE && isatty(STDIN_FILENO);
    int r = arcvm_set_kernel(vm, a.kernel);
    char cache[4096];
    if (!r && default_kernel_cache(a.kernel_cache, cache, sizeof(cache)))
        r = arcvm_set_kernel_cache(vm, cache);
    if (!r && a.initrd)
        r = arcvm_set_initrd(vm, a.initrd);
    if (!r && a.cmdline)
        r = arcvm_set_cmdline(vm, a.cmdline, 0);
    if (!r)
        r = arcvm_set_vcpus(vm, a.cpus);
    if (!r)
        r = arcvm_set_memory(vm, a.mem);
    if (!r)
        r = a.console == ARCVM_CONSOLE_NONE
                ? arcvm_set_console(vm, ARCVM_CONSOLE_NONE, -1, -1)
                : arcvm_set_console(vm, a.console, STDIN_FILENO, STDOUT_FILENO);
    if (!r)
        r = arcvm_set_rng(vm, a.rng);
    if (!r)
        r = arcvm_set_virtio_cmdline(vm, a.virtio_cmdline);
    for (unsigned i = 0; !r && i < a.naffinity; i++)
        apply_affinity(vm, a.affinity[i]);
    if (!r)
        r = arcvm_set_console_escape(vm, tty);
    if (!r)
        r = arcvm_set_boot_timer(vm, a.boot_timer);
    if (!r)
        r = cli_common_apply(vm, &a.common);
    if (r < 0) {
        fprintf(stderr, "arcvm: error: %s\n", arcvm_last_error(vm));
        arcvm_destroy(vm);
        return EXIT_ERROR;
    }

    return cli_run_vm(vm, tty, start_fresh, NULL, cli_snapshot_to(&a.common));
}

/* `arcvm check [--json] [--kvm-device PATH] [--kernel-cache DIR|off]`. */
static int check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"kvm-device", required_argument, NULL, CLI_OPT_KVM_DEVICE},
        {"kernel-cache", required_argument, NULL, OPT_KERNEL_CACHE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    const char *dev = NULL, *cache_opt = NULL;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = true; break;
        case CLI_OPT_KVM_DEVICE: dev = optarg; break;
        case OPT_KERNEL_CACHE: cache_opt = optarg; break;
        case 'h': usage(stdout); exit(0);
        default:
            if (optopt)
                die_usage("option '%s' needs a value", argv[optind - 1]);
            die_usage("unknown option '%s' for check", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    char cache[4096];
    bool have_cache = default_kernel_cache(cache_opt, cache, sizeof(cache));
    struct arcvm_check_report *rep = calloc(1, sizeof(*rep));
    if (!rep) {
        fprintf(stderr, "arcvm: error: out of memory\n");
        return EXIT_ERROR;
    }
    int r = arcvm_check_host(dev, have_cache ? cache : NULL, rep);
    if (r < 0 && r != -ENOTSUP) {
        fprintf(stderr, "arcvm: error: the check failed: %s\n", strerror(-r));
        free(rep);
        return EXIT_ERROR;
    }
    if (json) {
        json_t *items = json_array();
        for (unsigned i = 0; i < rep->count; i++) {
            const struct arcvm_check_item *it = &rep->items[i];
            json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:s}", "name", it->name, "status",
                                                   arcvm_check_status_name(it->status), "detail",
                                                   it->detail, "hint", it->hint));
        }
        json_t *doc = json_pack("{s:b,s:i,s:i,s:o}", "can_run", r == 0, "fails", rep->fails,
                                "warns", rep->warns, "checks", items);
        char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(doc);
    } else {
        for (unsigned i = 0; i < rep->count; i++) {
            const struct arcvm_check_item *it = &rep->items[i];
            printf("%s  %-20s %s\n", arcvm_check_status_name(it->status), it->name, it->detail);
            if (it->hint[0])
                printf("      %-20s -> %s\n", "", it->hint);
        }
        if (r == 0)
            printf("arcvm check: this host can run arcvm's VMs (%u warning%s)\n", rep->warns,
                   rep->warns == 1 ? "" : "s");
        else
            printf("arcvm check: this host cannot run a stock Linux guest (%u failure%s, %u "
                   "warning%s)\n",
                   rep->fails, rep->fails == 1 ? "" : "s", rep->warns, rep->warns == 1 ? "" : "s");
    }
    free(rep);
    return r == 0 ? 0 : EXIT_ERROR;
}

/* `arcvm vcpus --api-sock PATH`. */
static int vcpus(int argc, char **argv)
{
    static const struct option opts[] = {
        {"api-sock", required_argument, NULL, OPT_API_SOCK},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *sock = NULL;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_API_SOCK)
            sock = optarg;
        else if (c == 'h') {
            usage(stdout);
            exit(0);
        } else if (optopt)
            die_usage("option '%s' needs a value", argv[optind - 1]);
        else
            die_usage("unknown option '%s' for vcpus", argv[optind - 1]);
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!sock)
        die_usage("vcpus needs --api-sock PATH (for 'arcvm run', send it SIGUSR1)");
    char err[512];
    if (api_client_print_vcpus(sock, stdout, err, sizeof(err)) < 0) {
        fprintf(stderr, "arcvm: error: %s\n", err);
        return EXIT_ERROR;
    }
    return 0;
}

/* Firecracker's process flags that arcvm's own command line does not use:
 * a tool that starts Firecracker with them gets Firecracker mode. */
static bool firecracker_flag(const char *a)
{
    static const char *const flags[] = {"--api-sock",  "--config-file", "--no-api",
                                        "--id",        "--log-path",    "--level",
                                        "--metrics-path", "--boot-timer", "--no-seccomp",
                                        "--no-kvm-check", "--snapshot-version",
                                        "--describe-snapshot"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        size_t n = strlen(flags[i]);
        if (!strncmp(a, flags[i], n) && (a[n] == 0 || a[n] == '='))
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    int fc_skip = fc_argv_skip(argc, argv);
    if (fc_skip >= 0)
        return fc_main(argc - fc_skip, argv + fc_skip);
    if (argc >= 2 && firecracker_flag(argv[1]))
        return fc_main(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return EXIT_ERROR;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("arcvm %s\n", arcvm_version());
        return 0;
    }
    if (!strcmp(argv[1], "run"))
        return run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "restore"))
        return cli_restore(argc - 1, argv + 1);
    if (!strcmp(argv[1], "snapshot-merge"))
        return cli_snapshot_merge(argc - 1, argv + 1);
    if (!strcmp(argv[1], "check"))
        return check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "vcpus"))
        return vcpus(argc - 1, argv + 1);
    fprintf(stderr, "arcvm: error: unknown command '%s' (see arcvm --help)\n", argv[1]);
    return EXIT_ERROR;
}
