/* boot.c - the smallest useful program on libarcvm: boot a Linux guest with
 * its serial console on this process's stdin/stdout, wait until it stops,
 * and print why it stopped and a few counters.
 *
 * Build (in the tree, meson builds it as build/example-boot):
 *   cc boot.c -larcvm -o boot        (with libarcvm installed)
 * Run:
 *   ./boot KERNEL INITRD ["kernel command line"]
 */
#include <arcvm.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s KERNEL INITRD [CMDLINE]\n", argv[0]);
        return 2;
    }
    arcvm *vm;
    if (arcvm_create(&vm) < 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    /* Every setter returns 0 or -errno; arcvm_last_error() says why. */
    int r = arcvm_set_kernel(vm, argv[1]);
    if (!r)
        r = arcvm_set_initrd(vm, argv[2]);
    if (!r && argc == 4)
        r = arcvm_set_cmdline(vm, argv[3], 0); /* appended to arcvm's defaults */
    if (!r)
        r = arcvm_set_vcpus(vm, 2);
    if (!r)
        r = arcvm_set_memory(vm, 256ull << 20);
    if (!r)
        r = arcvm_set_console(vm, ARCVM_CONSOLE_SERIAL, 0, 1);
    if (!r)
        r = arcvm_start(vm); /* returns once the vCPUs run */
    if (r < 0) {
        fprintf(stderr, "arcvm: %s\n", arcvm_last_error(vm));
        arcvm_destroy(vm);
        return 1;
    }

    struct arcvm_exit ex;
    arcvm_wait(vm, &ex); /* blocks until the guest powers off, reboots, ... */
    static const char *const why[] = {"running", "powered off", "rebooted", "crashed",
                                      "stopped", "failed"};
    printf("example: guest %s (%s)\n", why[ex.reason], ex.message);

    struct arcvm_metrics m;
    if (arcvm_get_metrics(vm, &m) == 0)
        printf("example: exits: %llu port reads, %llu port writes, %llu MMIO\n",
               (unsigned long long)m.exits_io_in, (unsigned long long)m.exits_io_out,
               (unsigned long long)(m.exits_mmio_read + m.exits_mmio_write));
    arcvm_destroy(vm);
    return ex.reason == ARCVM_EXIT_POWEROFF ? 0 : 1;
}
