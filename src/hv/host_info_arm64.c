/* host_info_arm64.c - what kind of KVM this arm64 host has (hv.h).
 *
 * On arm64 KVM is part of the kernel and runs only when the kernel started
 * at EL2 (the CPU's hypervisor mode): without it there is no /dev/kvm at
 * all, and there is no paravirtual KVM to tell apart. So a KVM device here
 * is hardware virtualization; hv_selftest() still shows guest code runs.
 * Whether this host is itself a VM: the device tree says so for QEMU's virt
 * machine ("linux,dummy-virt") and for Xen (a /hypervisor node).
 */
#include "hv/hv.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* True when the device tree's root "compatible" list of @root holds @what. */
static bool dt_compatible(const char *root, const char *what)
{
    char p[512], buf[512];
    snprintf(p, sizeof(p), "%s/proc/device-tree/compatible", root);
    FILE *f = fopen(p, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0; /* NUL-separated strings; the last is terminated here */
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (!strcmp(buf + i, what))
            return true;
    return false;
}

const char *hv_setup_hint(void)
{
    return "use an arm64 host whose kernel starts at EL2 (then KVM registers /dev/kvm), or a VM "
           "with nested virtualization (QEMU: -M virt,virtualization=on)";
}

void hv_host_info(const char *root, struct hv_host_info *out)
{
    if (!root)
        root = "";
    memset(out, 0, sizeof(*out));
    out->kind = HV_HOST_HARDWARE;
    snprintf(out->cpu_desc, sizeof(out->cpu_desc), "the CPU's EL2 (hypervisor mode)");
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/proc/device-tree/hypervisor", root);
    out->in_vm = stat(p, &st) == 0 || dt_compatible(root, "linux,dummy-virt");
}
