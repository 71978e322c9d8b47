/* mmds-boot.c - end-to-end helper: boots a guest through the C library with
 * the metadata service on every NIC given, so NIC kinds the Firecracker API
 * cannot make (user-mode networking) are tested too. The serial console is
 * stdin/stdout; the exit status is 0 when the guest powers off.
 *
 * Usage: mmds-boot KERNEL INITRD CMDLINE DATA.json V1|V2 NETSPEC...
 *        (each NETSPEC as arcvm run --net, with an id=; needs /dev/kvm)
 */
#include "arcvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NICS 4

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc - 6 > MAX_NICS) {
        fprintf(stderr, "usage: mmds-boot KERNEL INITRD CMDLINE DATA.json V1|V2 NETSPEC...\n");
        return 2;
    }
    char *data = slurp(argv[4]);
    arcvm *vm;
    if (!data || arcvm_create(&vm) < 0) {
        fprintf(stderr, "mmds-boot: cannot read %s or create a VM\n", argv[4]);
        return 1;
    }
    const char *ids[MAX_NICS];
    unsigned n = 0;
    int r = arcvm_set_kernel(vm, argv[1]);
    if (!r)
        r = arcvm_set_initrd(vm, argv[2]);
    if (!r)
        r = arcvm_set_cmdline(vm, argv[3], 0);
    if (!r)
        r = arcvm_set_console(vm, ARCVM_CONSOLE_SERIAL, STDIN_FILENO, STDOUT_FILENO);
    for (int i = 6; !r && i < argc; i++) {
        r = arcvm_add_net(vm, argv[i]);
        const char *id = strstr(argv[i], "id=");
        ids[n++] = id ? strndup(id + 3, strcspn(id + 3, ",")) : "";
    }
    struct arcvm_mmds_config c = {
        .version = strcmp(argv[5], "V2") ? ARCVM_MMDS_V1 : ARCVM_MMDS_V2,
        .n_ifaces = n,
        .iface_ids = ids,
    };
    if (!r)
        r = arcvm_set_mmds(vm, &c);
    if (!r)
        r = arcvm_mmds_put(vm, data);
    if (!r)
        r = arcvm_start(vm);
    struct arcvm_exit e = {0};
    if (!r)
        r = arcvm_wait(vm, &e);
    if (r < 0) {
        fprintf(stderr, "mmds-boot: %s\n", arcvm_last_error(vm));
        arcvm_destroy(vm);
        return 1;
    }
    arcvm_destroy(vm);
    return e.reason == ARCVM_EXIT_POWEROFF ? 0 : 1;
}
