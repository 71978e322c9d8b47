/* fc_main.h - arcvm behaving as the `firecracker` binary: same flags, API
 * socket, config file, console and process lifetime, so tools that launch
 * Firecracker can launch arcvm instead. */
#ifndef ARCVM_FC_MAIN_H
#define ARCVM_FC_MAIN_H

#include <stdbool.h>

/* Exit statuses, Firecracker's where it has one (its FcExitCode). */
enum {
    FC_EXIT_OK = 0,                  /* the guest powered off or rebooted, or --help */
    FC_EXIT_ERROR = 1,               /* host error, failed start, guest crash */
    FC_EXIT_BAD_CONFIGURATION = 152, /* bad --config-file or --level */
    FC_EXIT_ARG_PARSING = 153,       /* unknown flag, missing value, bad --id */
};

/* How argv asks for Firecracker mode: the number of leading arguments to
 * drop before calling fc_main() (0 when the program is invoked under the
 * name "firecracker", 1 for `arcvm firecracker ...`), or -1 otherwise. */
int fc_argv_skip(int argc, char **argv);

/* Run as `firecracker` with @argv (argv[0] is the program name): flags, then
 * the API server and/or the configured VM until the guest stops or
 * SIGINT/SIGTERM arrives. Returns the process's exit status: FC_EXIT_*, or
 * 128+N after signal N. Blocks SIGINT, SIGTERM, SIGHUP and SIGQUIT while it
 * runs (taken from a signalfd) and ignores SIGPIPE; both are restored. */
int fc_main(int argc, char **argv);

#endif
