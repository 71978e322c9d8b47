/* hostcheck.c - can this host run arcvm's VMs? See hostcheck.h. */
#include "vmm/hostcheck.h"

#include "host/disk.h"
#include "host/kcache.h"
#include "host/netuser.h"
#include "host/tap.h"
#include "arch/arch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* What to do when the hypervisor is missing or not hardware-backed. */
#define HINT_NO_KVM hv_setup_hint()

const char *hostcheck_status_name(enum hostcheck_status s)
{
    return s == HOSTCHECK_PASS ? "PASS" : s == HOSTCHECK_WARN ? "WARN" : "FAIL";
}

static void add(struct hostcheck *hc, const char *name, enum hostcheck_status st,
                const char *hint, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add(struct hostcheck *hc, const char *name, enum hostcheck_status st,
                const char *hint, const char *fmt, ...)
{
    if (hc->count == HOSTCHECK_MAX)
        return;
    struct hostcheck_item *it = &hc->items[hc->count++];
    snprintf(it->name, sizeof(it->name), "%s", name);
    it->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
    va_end(ap);
    snprintf(it->hint, sizeof(it->hint), "%s", st == HOSTCHECK_PASS || !hint ? "" : hint);
    hc->warns += st == HOSTCHECK_WARN;
    hc->fails += st == HOSTCHECK_FAIL;
}

static const char *host_root(void)
{
    const char *r = getenv(HOSTCHECK_ROOT_ENV);
    return r && *r ? r : "";
}

/* The device node, its permissions and its API. 0 with the opened
 * hypervisor in *@out, or -errno after a FAIL. */
static int check_device(struct hostcheck *hc, const char *dev, struct hv **out)
{
    struct stat st;
    int sr = stat(dev, &st) < 0 ? -errno : 0;
    if (sr == -ENOENT) {
        add(hc, "kvm-device", HOSTCHECK_FAIL, HINT_NO_KVM,
            "%s does not exist: this host has no KVM", dev);
        return sr;
    }
    /* Any other reason not to look at it (a directory we may not search)
     * is the open's to report, as a permission or access verdict. */
    if (sr == 0 && S_ISCHR(st.st_mode))
        add(hc, "kvm-device", HOSTCHECK_PASS, NULL, "%s is a character device (%u:%u)", dev,
            major(st.st_rdev), minor(st.st_rdev));
    else if (sr == 0)
        add(hc, "kvm-device", HOSTCHECK_PASS, NULL, "%s exists (not a device node)", dev);
    int r = hv_open(out, dev);
    if (r == -EACCES || r == -EPERM)
        add(hc, "kvm-access", HOSTCHECK_FAIL, "add your user to the 'kvm' group or run as root",
            "no permission to open %s", dev);
    else if (r == -ENODEV || r == -ENXIO)
        add(hc, "kvm-access", HOSTCHECK_FAIL, HINT_NO_KVM,
            "%s has no driver behind it: this host has no KVM", dev);
    else if (r < 0 && r != -EPROTO)
        add(hc, "kvm-access", HOSTCHECK_FAIL, "check the device node", "cannot open %s: %s", dev,
            strerror(-r));
    else
        add(hc, "kvm-access", HOSTCHECK_PASS, NULL, "%s opens read-write", dev);
    if (r == -EPROTO)
        add(hc, "kvm-api", HOSTCHECK_FAIL, "give the KVM device node, normally /dev/kvm",
            "%s does not answer KVM's API version 12: it is not a KVM device", dev);
    else if (r == 0)
        add(hc, "kvm-api", HOSTCHECK_PASS, NULL, "KVM API version %d",
            hv_caps(*out)->api_version);
    return r;
}

/* The first FAIL of @hc as one sentence for an error message, between
 * @prefix and @suffix: -ENOTSUP, or 0 when nothing failed. */
static int first_fail(const struct hostcheck *hc, const char *prefix, const char *suffix,
                      char *err, size_t errlen)
{
    for (unsigned i = 0; i < hc->count; i++) {
        const struct hostcheck_item *it = &hc->items[i];
        if (it->status == HOSTCHECK_FAIL) {
            snprintf(err, errlen, "%s%s (%s)%s", prefix, it->detail, it->hint, suffix);
            return -ENOTSUP;
        }
    }
    return 0;
}

int hostcheck_open(const char *dev, struct hv **out, char *err, size_t errlen)
{
    struct hostcheck hc = {0};
    int r = check_device(&hc, dev, out);
    if (r < 0)
        first_fail(&hc, "", "", err, errlen);
    return r;
}

/* Hardware virtualization behind the device, or a paravirtual stand-in.
 * False after a FAIL. */
static bool check_kind(struct hostcheck *hc, const char *root)
{
    struct hv_host_info hi;
    hv_host_info(root, &hi);
    const char *tech = hi.cpu_desc;
    const char *nested = hi.in_vm ? "; this host is itself a VM (nested virtualization)" : "";
    switch (hi.kind) {
    case HV_HOST_HARDWARE:
        add(hc, "hardware-virt", HOSTCHECK_PASS, NULL, "%s on %s%s",
            hi.driver[0] ? hi.driver : "KVM (built in)", tech, nested);
        return true;
    case HV_HOST_PARAVIRT:
        add(hc, "hardware-virt", HOSTCHECK_FAIL, HINT_NO_KVM,
            "KVM here is %s, a paravirtual KVM (%s): it runs only kernels built for it; "
            "stock kernels die in emulation",
            hi.driver, tech);
        return false;
    case HV_HOST_UNKNOWN:
    default:
        add(hc, "hardware-virt", HOSTCHECK_WARN,
            "if the test guest below fails, look at its hint",
            "cannot tell what drives KVM here (no module known to arcvm; %s)", tech);
        return true;
    }
}

/* A guest really runs. */
static bool check_guest(struct hostcheck *hc, struct hv *hv)
{
    char why[160];
    uint64_t us = 0;
    int r = hv_selftest(hv, HOSTCHECK_SELFTEST_MS, &us, why, sizeof(why));
    if (r < 0) {
        add(hc, "guest-run", HOSTCHECK_FAIL, HINT_NO_KVM, "%s", why);
        return false;
    }
    add(hc, "guest-run", HOSTCHECK_PASS, NULL, "a test guest %s in %" PRIu64 " us",
        hv_selftest_what(), us);
    return true;
}

/* One line per hypervisor feature; false when a required one is missing. */
static bool check_features(struct hostcheck *hc, struct hv *hv)
{
    const struct hv_caps *c = hv_caps(hv);
    bool ok = true;
    for (unsigned b = 0; b < HV_FEAT_COUNT; b++) {
        uint32_t bit = 1u << b;
        bool need = HOSTCHECK_REQUIRED_FEATURES & bit;
        const struct hv_feat_desc *d = &hv_feat_desc[b];
        if (!d->name)
            continue; /* not on this architecture */
        char name[24];
        snprintf(name, sizeof(name), "cap-%s", d->name);
        if (c->features & bit)
            add(hc, name, HOSTCHECK_PASS, NULL, "%s", d->why);
        else if (need)
            add(hc, name, HOSTCHECK_FAIL, "use Linux 4.11 or newer with KVM built for this CPU",
                "missing: %s", d->why);
        else
            add(hc, name, HOSTCHECK_WARN, "a newer host kernel may offer it", "missing: %s",
                d->why);
        ok &= (c->features & bit) || !need;
    }
    add(hc, "vcpus", HOSTCHECK_PASS, NULL, "up to %u vCPUs per VM (%u recommended)",
        c->max_vcpus, c->recommended_vcpus);
    return ok;
}

/* The host-side back ends: none is needed for a guest to run. */
static void check_backends(struct hostcheck *hc, const char *kernel_cache)
{
    int r = disk_uring_probe();
    if (r == 0)
        add(hc, "io-uring", HOSTCHECK_PASS, NULL, "disks use io_uring");
    else if (r == -ENOSYS)
        add(hc, "io-uring", HOSTCHECK_WARN, "rebuild with liburing-dev installed",
            "arcvm was built without liburing: disks use synchronous I/O");
    else
        add(hc, "io-uring", HOSTCHECK_WARN,
            "allow io_uring (sysctl kernel.io_uring_disabled=0, seccomp) for faster disks",
            "io_uring is unavailable (%s): disks use synchronous I/O", strerror(-r));

    r = tap_probe();
    if (r == 0)
        add(hc, "tun", HOSTCHECK_PASS, NULL, "/dev/net/tun opens: --net tap= works");
    else
        add(hc, "tun", HOSTCHECK_WARN,
            r == -EACCES || r == -EPERM ? "run as root or give your user access to /dev/net/tun"
                                        : "load the tun module (modprobe tun)",
            "/dev/net/tun: %s: no TAP networking (--net user still works)", strerror(-r));

    char path[4096], err[512];
    if (netuser_find_helper(path, sizeof(path), err, sizeof(err)) == 0)
        add(hc, "net-helper", HOSTCHECK_PASS, NULL, "user-mode networking helper: %s", path);
    else
        add(hc, "net-helper", HOSTCHECK_WARN, "install arcvm-net-user beside arcvm",
            "no --net user: %s", err);

    if (!kernel_cache)
        return;
    r = kcache_probe(kernel_cache);
    if (r == 0)
        add(hc, "kernel-cache", HOSTCHECK_PASS, NULL, "%s is writable", kernel_cache);
    else
        add(hc, "kernel-cache", HOSTCHECK_WARN,
            "choose another directory with --kernel-cache, or 'off'",
            "%s: %s: compressed kernels are unpacked at every boot (slower)", kernel_cache, strerror(-r));
}

void hostcheck_run(struct hostcheck *hc, const char *dev, const char *kernel_cache)
{
    memset(hc, 0, sizeof(*hc));
    if (!dev)
        dev = "/dev/kvm";
    struct hv *hv = NULL;
    (void)check_device(hc, dev, &hv);
    (void)check_kind(hc, host_root());
    if (hv) {
        /* The test guest on a paravirtual KVM shows the failure for real;
         * it is bounded, so it cannot hang the check. */
        check_guest(hc, hv);
        check_features(hc, hv);
        hv_close(hv);
    }
    check_backends(hc, kernel_cache);
}

int hostcheck_for_start(struct hv *hv, const char *dev, bool check_kind_too, char *err,
                        size_t errlen)
{
    struct hostcheck hc = {0};
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s cannot run a stock Linux guest: ", dev);
    /* The kind and the features only: microseconds. The test guest stays in
     * `arcvm check`: a throwaway VM at every start would cost milliseconds
     * nested, and in the nested harness a test VM created beside a
     * library user's running VMs in the same process was seen to lock up
     * the outer kernel (2 of 3 runs of tests/e2e/lifecycle.c). */
    if (check_kind_too && !check_kind(&hc, host_root()))
        return first_fail(&hc, prefix,
                          "; `arcvm check` lists what this host has, --no-kvm-check skips this test",
                          err, errlen);
    /* Without these no guest runs at all, kind or not. */
    check_features(&hc, hv);
    return first_fail(&hc, prefix, "", err, errlen);
}

bool hostcheck_shmem_thp(void)
{
    char buf[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "re");
    if (!f)
        return false;
    bool ok = fgets(buf, sizeof(buf), f) && !strstr(buf, "[never]") && !strstr(buf, "[deny]");
    fclose(f);
    return ok;
}
