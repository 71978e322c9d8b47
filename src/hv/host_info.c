/* host_info.c - what kind of KVM this x86 host has, read from /proc and /sys
 * (arm64: host_info_arm64.c).
 *
 * A /dev/kvm that opens is not proof of hardware virtualization: KVM PVM
 * (module kvm_pvm) answers the same ioctls but runs only guest kernels built
 * for it. The module that registered /dev/kvm and the CPU flags the host
 * kernel sees tell the kinds apart; hv_selftest() then shows guest code
 * really runs.
 */
#include "hv/hv.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static bool module_loaded(const char *root, const char *name)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/sys/module/%s", root, name);
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* True when the whitespace-separated word @w appears in @line. */
static bool has_word(const char *line, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = line; (p = strstr(p, w)); p += n) {
        bool start = p == line || p[-1] == ' ' || p[-1] == '\t';
        bool end = p[n] == 0 || p[n] == ' ' || p[n] == '\t' || p[n] == '\n';
        if (start && end)
            return true;
    }
    return false;
}

/* The first "flags" line of cpuinfo (x86; arm64 has "Features", where
 * virtualization is not a CPU flag). */
static void cpu_flags(const char *root, struct hv_host_info *out)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/proc/cpuinfo", root);
    FILE *f = fopen(p, "re");
    if (!f)
        return;
    char line[8192];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5) || !strchr(line, ':'))
            continue;
        const char *v = strchr(line, ':') + 1;
        if (has_word(v, "vmx"))
            snprintf(out->cpu_virt, sizeof(out->cpu_virt), "vmx");
        else if (has_word(v, "svm"))
            snprintf(out->cpu_virt, sizeof(out->cpu_virt), "svm");
        out->in_vm = has_word(v, "hypervisor");
        break;
    }
    fclose(f);
}

const char *hv_setup_hint(void)
{
    return "use a host with VT-x/AMD-V enabled in the firmware (kvm_intel or kvm_amd) or a VM "
           "with nested virtualization";
}

void hv_host_info(const char *root, struct hv_host_info *out)
{
    static const struct {
        const char *module;
        enum hv_host_kind kind;
    } drivers[] = {
        {"kvm_intel", HV_HOST_HARDWARE},
        {"kvm_amd", HV_HOST_HARDWARE},
        {"kvm_pvm", HV_HOST_PARAVIRT},
    };
    if (!root)
        root = "";
    memset(out, 0, sizeof(*out));
    out->kind = HV_HOST_UNKNOWN;
    cpu_flags(root, out);
    snprintf(out->cpu_desc, sizeof(out->cpu_desc), "%s",
             !strcmp(out->cpu_virt, "vmx")   ? "Intel VT-x (vmx)"
             : !strcmp(out->cpu_virt, "svm") ? "AMD-V (svm)"
                                             : "the CPU shows no vmx or svm flag");
    /* A hardware module wins over PVM: KVM uses the vendor module when both
     * are loaded and the CPU has the extension. */
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
        if (!module_loaded(root, drivers[i].module))
            continue;
        if (drivers[i].kind == HV_HOST_HARDWARE && !out->cpu_virt[0])
            continue; /* loaded but idle without VT-x / AMD-V */
        snprintf(out->driver, sizeof(out->driver), "%s", drivers[i].module);
        out->kind = drivers[i].kind;
        return;
    }
    /* Built in rather than a module: the CPU flag is all there is to go by. */
    if (out->cpu_virt[0])
        out->kind = HV_HOST_HARDWARE;
}
