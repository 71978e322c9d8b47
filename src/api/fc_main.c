/* fc_main.c - the `firecracker` process behaviour: flags, the API socket,
 * the config file, signals and the exit status, around an event loop that
 * serves the API (api_http.c) and watches the VM's state. No VM logic. */
#include "api/fc_main.h"

#include "api/api.h"
#include "api/api_http.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Firecracker's default API socket (a runtime file, hence /run). */
#define FC_DEFAULT_API_SOCK "/run/firecracker.socket"
/* Firecracker flushes metrics every 60 s (WRITE_METRICS_PERIOD_MS). */
#define FC_METRICS_PERIOD_S 60
/* A configuration file is a few KiB; the cap keeps a wrong path (a disk
 * image, say) from being read whole into memory. */
#define FC_CONFIG_MAX (1u << 20)

enum {
    OPT_API_SOCK = 256,
    OPT_CONFIG_FILE,
    OPT_NO_API,
    OPT_BOOT_TIMER,
    OPT_ID,
    OPT_LOG_PATH,
    OPT_LEVEL,
    OPT_METRICS_PATH,
    OPT_MODULE,
    OPT_SHOW_LEVEL,
    OPT_SHOW_LOG_ORIGIN,
    OPT_MAX_PAYLOAD,
    OPT_START_TIME_US,
    OPT_START_TIME_CPU_US,
    OPT_PARENT_CPU_TIME_US,
    OPT_NO_SECCOMP,
    OPT_NO_KVM_CHECK,
    OPT_SECCOMP_FILTER,
    OPT_MMDS_SIZE_LIMIT,
    OPT_METADATA,
    OPT_ENABLE_PCI,
    OPT_SNAPSHOT_VERSION,
    OPT_DESCRIBE_SNAPSHOT,
    OPT_VERSION,
    OPT_HELP,
    OPT_LAST
};

static const struct option fc_opts[] = {
    {"api-sock", required_argument, NULL, OPT_API_SOCK},
    {"config-file", required_argument, NULL, OPT_CONFIG_FILE},
    {"no-api", no_argument, NULL, OPT_NO_API},
    {"boot-timer", no_argument, NULL, OPT_BOOT_TIMER},
    {"id", required_argument, NULL, OPT_ID},
    {"log-path", required_argument, NULL, OPT_LOG_PATH},
    {"level", required_argument, NULL, OPT_LEVEL},
    {"metrics-path", required_argument, NULL, OPT_METRICS_PATH},
    {"module", required_argument, NULL, OPT_MODULE},
    {"show-level", no_argument, NULL, OPT_SHOW_LEVEL},
    {"show-log-origin", no_argument, NULL, OPT_SHOW_LOG_ORIGIN},
    {"http-api-max-payload-size", required_argument, NULL, OPT_MAX_PAYLOAD},
    {"start-time-us", required_argument, NULL, OPT_START_TIME_US},
    {"start-time-cpu-us", required_argument, NULL, OPT_START_TIME_CPU_US},
    {"parent-cpu-time-us", required_argument, NULL, OPT_PARENT_CPU_TIME_US},
    {"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
    {"no-kvm-check", no_argument, NULL, OPT_NO_KVM_CHECK},
    {"seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER},
    {"mmds-size-limit", required_argument, NULL, OPT_MMDS_SIZE_LIMIT},
    {"metadata", required_argument, NULL, OPT_METADATA},
    {"enable-pci", no_argument, NULL, OPT_ENABLE_PCI},
    {"snapshot-version", no_argument, NULL, OPT_SNAPSHOT_VERSION},
    {"describe-snapshot", required_argument, NULL, OPT_DESCRIBE_SNAPSHOT},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct fc_args {
    const char *api_sock, *config_file, *id, *log_path, *level, *metrics_path, *module;
    const char *seccomp_filter, *metadata;
    bool no_api, boot_timer, show_level, show_log_origin, no_kvm_check, no_seccomp;
    uint64_t max_payload, mmds_size_limit; /* mmds_size_limit 0: max_payload */
    bool have_start_us, have_start_cpu_us;
    uint64_t start_us, start_cpu_us, parent_cpu_us;
};

/* Everything the event callbacks need: the process's one run. */
struct fc {
    struct event_base *base;
    struct api *api;
    struct event *sig_ev, *state_ev, *metrics_ev;
    int sfd;
    int signo;          /* the first termination signal, 0 if none */
    struct termios tio; /* the terminal before raw mode */
    bool tio_saved;
    bool sandboxed; /* this thread's seccomp filter is on */
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: firecracker [options]   (arcvm in Firecracker mode)\n"
            "\n"
            "Runs one microVM configured through Firecracker's REST API on a Unix socket\n"
            "and/or a configuration file. The guest's serial console is stdin/stdout.\n"
            "\n"
            "  --api-sock PATH          API socket to create (default " FC_DEFAULT_API_SOCK ");\n"
            "                           refused if PATH exists; removed on exit\n"
            "  --config-file FILE       configure the microVM from FILE (Firecracker's JSON)\n"
            "                           and start it at once\n"
            "  --no-api                 no API socket (needs --config-file)\n"
            "  --id ID                  instance id, 1-64 letters, digits, '-'\n"
            "                           (default anonymous-instance)\n"
            "  --boot-timer             log the time until the guest writes 123 to MMIO\n"
            "                           0xc0000000\n"
            "  --log-path PATH          log to PATH (a file, appended to, or a FIFO)\n"
            "  --level LEVEL            Error, Warning, Info, Debug, Trace or Off (any case)\n"
            "  --show-level, --show-log-origin, --module M\n"
            "                           accepted; arcvm always shows the level, never the\n"
            "                           origin, and logs every module\n"
            "  --metrics-path PATH      write metrics (one JSON line a minute) to PATH\n"
            "  --http-api-max-payload-size N\n"
            "                           largest request body, bytes (default %d)\n"
            "  --start-time-us N, --start-time-cpu-us N, --parent-cpu-time-us N\n"
            "                           process start times for the startup metrics\n"
            "  --no-seccomp             run without the per-thread seccomp filters\n"
            "  --seccomp-filter FILE    filters from FILE, compiled by Firecracker's\n"
            "                           seccompiler-bin (vmm, api, vcpu), not the built-in\n"
            "  --no-kvm-check           start even where `arcvm check` says KVM cannot run a\n"
            "                           stock guest (arcvm's own flag)\n"
            "  --snapshot-version       the snapshot format this arcvm writes (vN.0.0)\n"
            "  --describe-snapshot PATH the format version of a snapshot state file\n"
            "  --version, --help\n"
            "\n"
            "  --metadata FILE          put the JSON object in FILE into the microVM\n"
            "                           metadata service's store (as PUT /mmds)\n"
            "  --mmds-size-limit N      largest metadata store, bytes (default: the\n"
            "                           largest request body)\n"
            "\n"
            "Not supported (refused): --enable-pci.\n"
            "\n"
            "Exit status: 0 the guest powered off or rebooted; 1 a host error, a failed\n"
            "start or a guest crash; 152 a bad configuration file or log level; 153 bad\n"
            "flags; 128+N stopped by signal N (SIGINT, SIGTERM, SIGHUP, SIGQUIT stop the\n"
            "microVM cleanly first). SIGUSR1 prints what each vCPU is doing to stderr.\n",
            API_MAX_BODY_DEFAULT);
}

static int errorf(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int errorf(int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "arcvm: error: %s%s\n", msg,
            status == FC_EXIT_ARG_PARSING ? " (see --help)" : "");
    return status;
}

static bool parse_u64(const char *s, uint64_t *v)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *v = x;
    return true;
}

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The flags that only store their value (a string, or true) in fc_args. */
struct fc_store {
    int opt;
    size_t off;
    bool flag;
};

static const struct fc_store fc_stores[] = {
    {OPT_API_SOCK, offsetof(struct fc_args, api_sock), false},
    {OPT_CONFIG_FILE, offsetof(struct fc_args, config_file), false},
    {OPT_NO_API, offsetof(struct fc_args, no_api), true},
    {OPT_BOOT_TIMER, offsetof(struct fc_args, boot_timer), true},
    {OPT_ID, offsetof(struct fc_args, id), false},
    {OPT_LOG_PATH, offsetof(struct fc_args, log_path), false},
    {OPT_LEVEL, offsetof(struct fc_args, level), false},
    {OPT_METRICS_PATH, offsetof(struct fc_args, metrics_path), false},
    {OPT_MODULE, offsetof(struct fc_args, module), false},
    {OPT_SHOW_LEVEL, offsetof(struct fc_args, show_level), true},
    {OPT_SHOW_LOG_ORIGIN, offsetof(struct fc_args, show_log_origin), true},
    {OPT_NO_KVM_CHECK, offsetof(struct fc_args, no_kvm_check), true},
    {OPT_NO_SECCOMP, offsetof(struct fc_args, no_seccomp), true},
};

static const struct fc_store *fc_store_of(int opt)
{
    for (size_t i = 0; i < sizeof(fc_stores) / sizeof(fc_stores[0]); i++)
        if (fc_stores[i].opt == opt)
            return &fc_stores[i];
    return NULL;
}

/* Parse flags into @a. Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct fc_args *a)
{
    a->api_sock = FC_DEFAULT_API_SOCK;
    a->max_payload = API_MAX_BODY_DEFAULT;
    bool seen[OPT_LAST] = {false};
    bool help = false, version = false;
    int c, li = -1;
    opterr = 0;
    optind = 0; /* GNU: start afresh, whatever parsed argv before */
    while ((c = getopt_long(argc, argv, "+", fc_opts, &li)) != -1) {
        if (c == '?' || c == ':') {
            if (optopt)
                return errorf(FC_EXIT_ARG_PARSING, "option '%s' needs a value", argv[optind - 1]);
            return errorf(FC_EXIT_ARG_PARSING, "unknown option '%s'", argv[optind - 1]);
        }
        if (seen[c])
            return errorf(FC_EXIT_ARG_PARSING, "option '--%s' was given more than once",
                          fc_opts[li].name);
        seen[c] = true;
        const struct fc_store *st = fc_store_of(c);
        if (st) {
            char *field = (char *)a + st->off;
            if (st->flag)
                *(bool *)field = true;
            else
                *(const char **)field = optarg;
            continue;
        }
        switch (c) {
        case OPT_MAX_PAYLOAD:
            if (!parse_u64(optarg, &a->max_payload) || !a->max_payload)
                return errorf(FC_EXIT_ARG_PARSING,
                              "--http-api-max-payload-size '%s': give a number of bytes", optarg);
            break;
        case OPT_MMDS_SIZE_LIMIT: {
            if (!parse_u64(optarg, &a->mmds_size_limit) || !a->mmds_size_limit)
                return errorf(FC_EXIT_ARG_PARSING, "--mmds-size-limit '%s': give a number of bytes",
                              optarg);
            break;
        }
        case OPT_START_TIME_US:
        case OPT_START_TIME_CPU_US:
        case OPT_PARENT_CPU_TIME_US: {
            uint64_t v;
            if (!parse_u64(optarg, &v))
                return errorf(FC_EXIT_ARG_PARSING, "--%s '%s': give a number of microseconds",
                              fc_opts[li].name, optarg);
            if (c == OPT_START_TIME_US)
                a->start_us = v, a->have_start_us = true;
            else if (c == OPT_START_TIME_CPU_US)
                a->start_cpu_us = v, a->have_start_cpu_us = true;
            else
                a->parent_cpu_us = v;
            break;
        }
        case OPT_SECCOMP_FILTER:
            a->seccomp_filter = optarg;
            break;
        case OPT_METADATA:
            a->metadata = optarg;
            break;
        case OPT_ENABLE_PCI:
            return errorf(FC_EXIT_ARG_PARSING,
                          "--enable-pci is not supported: arcvm's devices are virtio-mmio only");
        case OPT_SNAPSHOT_VERSION:
            /* Firecracker prints its snapshot data format version. */
            printf("v%u.0.0\n", (unsigned)ARCVM_SNAPSHOT_VERSION);
            return FC_EXIT_OK;
        case OPT_DESCRIBE_SNAPSHOT: {
            unsigned v;
            char err[512];
            if (arcvm_snapshot_version(optarg, &v, err, sizeof(err)) < 0)
                return errorf(FC_EXIT_ERROR, "%s", err);
            printf("v%u.0.0\n", v);
            return FC_EXIT_OK;
        }
        case OPT_VERSION:
            version = true;
            break;
        case OPT_HELP:
            help = true;
            break;
        }
    }
    if (optind < argc)
        return errorf(FC_EXIT_ARG_PARSING, "unexpected argument '%s'", argv[optind]);
    if (help) {
        usage(stdout);
        return FC_EXIT_OK;
    }
    if (version) {
        printf("arcvm v%s (Firecracker-compatible mode)\n", arcvm_version());
        return FC_EXIT_OK;
    }
    if (a->no_api && !a->config_file)
        return errorf(FC_EXIT_ARG_PARSING, "--no-api needs --config-file: without the API and a "
                                           "configuration there is nothing to run");
    if (a->id && !api_instance_id_valid(a->id))
        return errorf(FC_EXIT_ARG_PARSING, "--id '%s': give 1 to 64 letters, digits or '-'", a->id);
    int level;
    if (a->level && api_log_level_parse(a->level, &level) < 0)
        return errorf(FC_EXIT_BAD_CONFIGURATION,
                      "Invalid value for logger level: %s. Possible values: [Error, Warning, Info, "
                      "Debug, Trace, Off]",
                      a->level);
    return -1;
}

/* Read the whole configuration file; NULL with @err on failure. */
static char *read_config(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot open the configuration file %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > FC_CONFIG_MAX) {
        snprintf(err, errlen, "the configuration file %s is not a regular file of at most %u bytes",
                 path, FC_CONFIG_MAX);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "cannot read the configuration file %s: %s", path,
                     r < 0 ? strerror(errno) : "it shrank while being read");
            goto fail;
        }
        n += (size_t)r;
    }
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    buf[n] = 0;
    *len = n;
    close(fd);
    return buf;
fail:
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void restore_terminal(struct fc *fc)
{
    if (fc->tio_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &fc->tio);
    fc->tio_saved = false;
}

static void on_vm_state(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct fc *fc = arg;
    if (api_vm_event(fc->api))
        event_base_loopbreak(fc->base);
}

/* The VM runs: watch its state, and hand the terminal to the guest raw (as
 * Firecracker does), so its keys, Ctrl-C included, reach the guest. */
static void on_vm_started(void *arg)
{
    struct fc *fc = arg;
    int fd = api_vm_fd(fc->api);
    if (fd >= 0 && !fc->state_ev) {
        fc->state_ev = event_new(fc->base, fd, EV_READ | EV_PERSIST, on_vm_state, fc);
        if (fc->state_ev)
            event_add(fc->state_ev, NULL);
    }
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &fc->tio) == 0) {
        struct termios t = fc->tio;
        cfmakeraw(&t);
        fc->tio_saved = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    }
    /* As Firecracker's VMM thread: filtered once the VM is built. */
    char err[512];
    if (!fc->sandboxed && api_sandbox(fc->api, ARCVM_THREAD_VMM, err, sizeof(err)) < 0) {
        errorf(FC_EXIT_ERROR, "%s; stopping the microVM", err);
        api_stop(fc->api);
    }
    fc->sandboxed = true;
}

static int sandbox_api_thread(void *arg, char *err, size_t errlen)
{
    return api_sandbox(arg, ARCVM_THREAD_API, err, errlen);
}

/* SIGUSR1: what each vCPU is doing, on stderr; the VM keeps running. */
static void print_vcpus(struct fc *fc)
{
    enum { MAX = 256 };
    struct arcvm_vcpu_info *v = calloc(MAX, sizeof(*v));
    int n = v ? api_vcpu_info(fc->api, v, MAX) : -ENOMEM;
    if (n < 0)
        fprintf(stderr, "arcvm: vCPU report: the microVM is not running\n");
    for (int i = 0; i < n && i < MAX; i++) {
        char line[256];
        arcvm_vcpu_info_format(&v[i], line, sizeof(line));
        fprintf(stderr, "arcvm: %s\n", line);
    }
    free(v);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct fc *fc = arg;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (si.ssi_signo == SIGUSR1) {
        print_vcpus(fc);
        return;
    }
    if (fc->signo) {
        event_base_loopbreak(fc->base); /* a second signal: do not wait any longer */
        return;
    }
    fc->signo = (int)si.ssi_signo;
    /* Stop the VM and exit once it has stopped; without one, exit now. */
    if (api_stop(fc->api) < 0)
        event_base_loopbreak(fc->base);
}

static void on_metrics_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct fc *fc = arg;
    api_flush_metrics(fc->api); /* nothing configured, or a full FIFO: skip */
}

/* The guest's fate as an exit status. Firecracker exits 0 when the guest
 * reboots (its guests shut down that way, with reboot=k) and when it powers
 * off; a crash is reported as an error here, where Firecracker says 0. */
static int exit_status(const struct arcvm_exit *ex, int signo)
{
    switch (ex->reason) {
    case ARCVM_EXIT_POWEROFF:
    case ARCVM_EXIT_REBOOT:
        return FC_EXIT_OK;
    case ARCVM_EXIT_STOPPED:
        return signo ? 128 + signo : FC_EXIT_OK;
    case ARCVM_EXIT_CRASH:
        return errorf(FC_EXIT_ERROR, "the guest crashed: %s", ex->message);
    default:
        return errorf(FC_EXIT_ERROR, "%s", ex->message[0] ? ex->message : "the microVM failed");
    }
}

static int run(struct fc *fc, const struct fc_args *args, uint64_t t0_wall, uint64_t t0_cpu)
{
    char err[1024];
    struct api_http *http = NULL;
    bool sock_created = false;
    int status = FC_EXIT_ERROR;

    struct api_options o = {
        .instance_id = args->id,
        .console_in = STDIN_FILENO,
        .console_out = STDOUT_FILENO,
        .boot_timer = args->boot_timer,
        .no_kvm_check = args->no_kvm_check,
        .no_seccomp = args->no_seccomp,
        .seccomp_filter = args->seccomp_filter,
        .max_body = args->max_payload,
        .mmds_size_limit = args->mmds_size_limit,
        .vm_started = on_vm_started,
        .vm_started_arg = fc,
    };
    if (api_create(&o, &fc->api, err, sizeof(err)) < 0)
        return errorf(FC_EXIT_ERROR, "%s", err);
    if (args->log_path || args->level || args->module || args->show_level ||
        args->show_log_origin) {
        struct api_logger l = {args->log_path, args->level, args->show_level, args->show_log_origin,
                               args->module};
        if (api_set_logger(fc->api, &l, err, sizeof(err)) < 0)
            return errorf(FC_EXIT_ERROR, "%s", err);
    }
    if (args->metrics_path && api_set_metrics(fc->api, args->metrics_path, err, sizeof(err)) < 0)
        return errorf(FC_EXIT_ERROR, "%s", err);

    fc->base = event_base_new();
    if (!fc->base)
        return errorf(FC_EXIT_ERROR, "cannot create the event loop");
    fc->sig_ev = event_new(fc->base, fc->sfd, EV_READ | EV_PERSIST, on_signal, fc);
    fc->metrics_ev = event_new(fc->base, -1, EV_PERSIST, on_metrics_timer, fc);
    struct timeval period = {FC_METRICS_PERIOD_S, 0};
    if (!fc->sig_ev || !fc->metrics_ev || event_add(fc->sig_ev, NULL) < 0 ||
        event_add(fc->metrics_ev, &period) < 0) {
        errorf(FC_EXIT_ERROR, "cannot set up the event loop");
        goto out;
    }

    if (!args->no_api) {
        int lfd = api_http_listen_unix(args->api_sock, err, sizeof(err));
        if (lfd < 0) {
            errorf(FC_EXIT_ERROR, "%s", err);
            goto out;
        }
        sock_created = true;
        struct api_http_limits lim = {.max_body = args->max_payload,
                                      .sandbox = sandbox_api_thread,
                                      .sandbox_arg = fc->api};
        if (api_http_create(fc->base, fc->api, lfd, &lim, &http, err, sizeof(err)) < 0) {
            errorf(FC_EXIT_ERROR, "%s", err);
            goto out;
        }
        uint64_t w0 = args->have_start_us ? args->start_us : t0_wall;
        uint64_t c0 = args->have_start_cpu_us ? args->start_cpu_us : t0_cpu;
        api_set_startup_time(fc->api, clock_us(CLOCK_MONOTONIC) - w0,
                             clock_us(CLOCK_PROCESS_CPUTIME_ID) - c0 + args->parent_cpu_us);
    }

    if (args->metadata) {
        size_t len;
        char *json = read_config(args->metadata, &len, err, sizeof(err));
        int r = json ? api_mmds_load(fc->api, json, len, err, sizeof(err)) : -EINVAL;
        free(json);
        if (r < 0) {
            status = errorf(FC_EXIT_BAD_CONFIGURATION, "--metadata %s: %s", args->metadata, err);
            goto out;
        }
    }
    if (args->config_file) {
        size_t len;
        char *json = read_config(args->config_file, &len, err, sizeof(err));
        if (!json) {
            status = errorf(FC_EXIT_BAD_CONFIGURATION, "%s", err);
            goto out;
        }
        int r = api_load_config(fc->api, json, len, err, sizeof(err));
        free(json);
        if (r < 0) {
            status = errorf(FC_EXIT_BAD_CONFIGURATION, "%s: %s", args->config_file, err);
            goto out;
        }
        if (api_start(fc->api, err, sizeof(err)) < 0) {
            errorf(FC_EXIT_ERROR, "%s", err);
            goto out;
        }
    }

    event_base_dispatch(fc->base);

    api_flush_metrics(fc->api); /* a last line on the way out, as Firecracker */
    const struct arcvm_exit *ex = api_exit(fc->api);
    if (ex)
        status = exit_status(ex, fc->signo);
    else if (fc->signo)
        status = 128 + fc->signo;
    else
        status = errorf(FC_EXIT_ERROR, "the event loop stopped unexpectedly");
out:
    restore_terminal(fc);
    api_http_destroy(http);
    if (sock_created)
        unlink(args->api_sock);
    if (fc->state_ev)
        event_free(fc->state_ev);
    if (fc->metrics_ev)
        event_free(fc->metrics_ev);
    if (fc->sig_ev)
        event_free(fc->sig_ev);
    if (fc->base)
        event_base_free(fc->base);
    return status;
}

int fc_main(int argc, char **argv)
{
    uint64_t t0_wall = clock_us(CLOCK_MONOTONIC), t0_cpu = clock_us(CLOCK_PROCESS_CPUTIME_ID);
    struct fc_args args = {0};
    int status = parse_args(argc, argv, &args);
    if (status >= 0)
        return status;

    /* Termination signals come through a signalfd on the event loop; they
     * are blocked before any VM thread exists so every thread inherits the
     * mask and none is interrupted by them. */
    sigset_t sigs, old_mask;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGQUIT);
    sigaddset(&sigs, SIGUSR1); /* the vCPU report */
    pthread_sigmask(SIG_BLOCK, &sigs, &old_mask);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigaction(SIGPIPE, &ign, &old_pipe); /* a client gone mid-reply is not a death */

    struct fc fc = {.sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)};
    if (fc.sfd < 0)
        status = errorf(FC_EXIT_ERROR, "signalfd: %s", strerror(errno));
    else
        status = run(&fc, &args, t0_wall, t0_cpu);

    api_destroy(fc.api); /* stops a VM still running: its threads are gone after */
    if (fc.sfd >= 0)
        close(fc.sfd);
    sigaction(SIGPIPE, &old_pipe, NULL);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return status;
}

int fc_argv_skip(int argc, char **argv)
{
    if (argc >= 1 && argv[0]) {
        const char *base = strrchr(argv[0], '/');
        if (!strcmp(base ? base + 1 : argv[0], "firecracker"))
            return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "firecracker"))
        return 1;
    return -1;
}
