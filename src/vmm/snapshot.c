/* snapshot.c - save a paused VM to a state file and a memory file, and
 * bring one back as a new VM (vm.h: vm_snapshot_create, vm_restore).
 *
 * State file: a 24-byte header (magic "ARCVMSNP", u32 format version, u32
 * CRC-32C of the state, u64 state length; little-endian), then the state as
 * named sections (base/snap.h):
 *   "host"    arcvm version, architecture, page size, then the arch's host
 *             facts (arch_save_host)
 *   "config"  the machine-defining configuration (config_save)
 *   "memory"  Full or Diff, the RAM regions (gpa, size), and for a Diff the
 *             runs of pages it holds; the memory file holds the regions one
 *             after another from offset 0, sparse where pages are zero (a
 *             Full) or holding only the pages written since the last
 *             snapshot (a Diff: KVM's dirty log and the devices' writes)
 *   "virtioN" each virtio-mmio device: its device ID, then its transport,
 *             queues and device state (virtio_mmio_save)
 *   platform  the architecture's devices (arch_save: "x86.serial", ...)
 *   "vm"      the hypervisor's VM-wide state (hv_vm_save)
 *   "vcpuN"   each vCPU (hv_vcpu_save)
 * A file is trusted only as far as it is checked: the header and checksum
 * first, then every section by the component that reads it.
 */
#include "vmm/vm.h"

#include "arch/arch.h"
#include "base/log.h"
#include "base/snap.h"
#include "vmm/snapshot_file.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PARK_TIMEOUT_MS 5000

#if defined(__x86_64__)
#define SNAP_ARCH "x86_64"
#elif defined(__aarch64__)
#define SNAP_ARCH "aarch64"
#endif

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- create ---- */

static void save_state(struct vm *vm, struct snap_w *w, int *hv_err, const char **what)
{
    snap_begin(w, "host");
    snap_put_str(w, ARCVM_VERSION);
    snap_put_str(w, SNAP_ARCH);
    snap_put_u32(w, (uint32_t)sysconf(_SC_PAGESIZE));
    arch_save_host(vm->arch, w);
    snap_end(w);

    snap_begin(w, "config");
    config_save(&vm->cfg, w);
    snap_end(w);

    char name[SNAP_NAME_MAX];
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        snprintf(name, sizeof(name), "virtio%u", i);
        snap_begin(w, name);
        snap_put_u32(w, vm->virtio[i].dev->ops->device_id);
        virtio_mmio_save(&vm->virtio[i].mmio, w);
        snap_end(w);
    }
    int r = arch_save(vm->arch, w);
    if (r < 0 && !*hv_err) {
        *hv_err = r;
        *what = "the platform devices";
    }
    snap_begin(w, "vm");
    r = hv_vm_save(vm->hvm, w);
    snap_end(w);
    if (r < 0 && !*hv_err) {
        *hv_err = r;
        *what = "the interrupt controllers and clocks";
    }
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        snprintf(name, sizeof(name), "vcpu%u", i);
        snap_begin(w, name);
        r = hv_vcpu_save(vm->vcpus[i].hv, w);
        snap_end(w);
        if (r < 0 && !*hv_err) {
            *hv_err = r;
            *what = "a vCPU";
        }
    }
}


/* Pages written since the last snapshot (or the start of tracking), one
 * bit per page of the whole memory file: the guest's (KVM's dirty log) and
 * the devices'. Taking them starts the log over. NULL when not tracking. */
static int take_dirty(struct vm *vm, uint64_t **out)
{
    *out = NULL;
    if (!vm->cfg.track_dirty)
        return 0;
    uint64_t pages = vm->mem.total / SNAP_PAGE, at = 0;
    uint64_t *all = calloc((pages + 63) / 64 + 1, sizeof(uint64_t));
    if (!all)
        return -ENOMEM;
    for (unsigned i = 0; i < vm->mem.count; i++) {
        uint64_t n = vm->mem.r[i].size / SNAP_PAGE;
        uint64_t *bits = calloc((n + 63) / 64, sizeof(uint64_t));
        int r = bits ? hv_vm_mem_dirty_take(vm->hvm, vm->mem_slot[i], bits) : -ENOMEM;
        if (r < 0) {
            free(bits);
            free(all);
            return r;
        }
        guest_mem_take_dirty(&vm->mem, i, bits);
        for (uint64_t k = 0; k < n; k++)
            if (bits[k / 64] >> (k % 64) & 1)
                all[(at + k) / 64] |= 1ull << ((at + k) % 64);
        at += n;
        free(bits);
    }
    *out = all;
    return 0;
}

static bool bit(const uint64_t *b, uint64_t i)
{
    return b[i / 64] >> (i % 64) & 1;
}

/* A snapshot that failed after taking the log gives the pages back to it:
 * the next Diff must still carry them. */
static void untake_dirty(struct vm *vm, const uint64_t *dirty)
{
    for (uint64_t p = 0; dirty && p < vm->mem.total / SNAP_PAGE; p++)
        if (bit(dirty, p))
            guest_mem_mark_dirty(&vm->mem, vm->mem.base + p * SNAP_PAGE, SNAP_PAGE);
}

/* "memory": the kind, the regions and, for a Diff, the runs of pages. */
static void save_memory(const struct vm *vm, struct snap_w *w, const uint64_t *dirty)
{
    snap_begin(w, "memory");
    snap_put_u8(w, dirty ? MEM_DIFF : MEM_FULL);
    snap_put_u32(w, vm->mem.count);
    for (unsigned i = 0; i < vm->mem.count; i++) {
        snap_put_u64(w, vm->mem.r[i].gpa);
        snap_put_u64(w, vm->mem.r[i].size);
    }
    if (dirty) {
        uint64_t pages = vm->mem.total / SNAP_PAGE, nruns = 0;
        for (uint64_t p = 0; p < pages; p++)
            nruns += bit(dirty, p) && (p == 0 || !bit(dirty, p - 1));
        snap_put_u64(w, nruns);
        for (uint64_t p = 0; p < pages;) {
            if (!bit(dirty, p)) {
                p++;
                continue;
            }
            uint64_t q = p;
            while (q < pages && bit(dirty, q))
                q++;
            snap_put_u64(w, p);
            snap_put_u64(w, q - p);
            p = q;
        }
    }
    snap_end(w);
}

/* A Diff's memory file: as long as the RAM, holding only the dirty pages. */
static int dump_dirty(const struct vm *vm, int fd, const uint64_t *dirty)
{
    if (ftruncate(fd, (off_t)vm->mem.total) < 0)
        return -errno;
    uint64_t pages = vm->mem.total / SNAP_PAGE;
    for (uint64_t p = 0; p < pages; p++) {
        if (!bit(dirty, p))
            continue;
        uint64_t q = p;
        while (q < pages && bit(dirty, q))
            q++;
        int r = guest_mem_write_out(&vm->mem, fd, p * SNAP_PAGE, (q - p) * SNAP_PAGE);
        if (r < 0)
            return r;
        p = q;
    }
    return 0;
}

/* Wait until every vCPU thread is parked (a VM restored paused may still
 * be on its way there). vm->lock held. */
static int wait_parked(struct vm *vm)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += PARK_TIMEOUT_MS / 1000;
    int r = 0;
    while (vm->parked < vm->running && vm->state == VM_PAUSED && r == 0)
        r = pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline);
    return vm->parked >= vm->running ? 0 : -ETIMEDOUT;
}

int vm_snapshot_create(struct vm *vm, const struct vm_snapshot_params *p, char *err, size_t errlen)
{
    if (!p->state_path || !*p->state_path || !p->mem_path || !*p->mem_path) {
        snprintf(err, errlen, "a snapshot needs a state file path and a memory file path");
        return -EINVAL;
    }
    if (vm->cfg.nshares) {
        /* The guest's inodes and open files on a share live in the FUSE
         * server as host descriptors, which a state file cannot carry. */
        snprintf(err, errlen, "snapshots of a VM with a shared directory (--share) are not "
                 "supported yet");
        return -ENOTSUP;
    }
    if (vm->cfg.balloon.free_page_hinting) {
        /* The state file does not record the hinting feature or a run in
         * progress; the restored device would offer other features. */
        snprintf(err, errlen, "snapshots of a VM with balloon free page hinting are not "
                 "supported yet");
        return -ENOTSUP;
    }
    if (vm->cfg.memhp.enabled) {
        /* The state file has no place for the hotplug region and which of
         * its blocks the guest plugged; a restored guest would lose them. */
        snprintf(err, errlen, "snapshots of a VM with memory hotplug (virtio-mem) are not "
                 "supported yet");
        return -ENOTSUP;
    }
    if (vm->cfg.npmems) {
        /* The guest's view of a pmem region is the host file itself, which
         * the memory file does not hold and a restore could not check. */
        snprintf(err, errlen, "snapshots of a VM with a pmem device (--pmem, /pmem) are not "
                 "supported yet");
        return -ENOTSUP;
    }
    if (p->diff && !vm->cfg.track_dirty) {
        snprintf(err, errlen, "a Diff snapshot needs dirty page tracking from the start "
                 "(track_dirty_pages in the machine configuration or the snapshot load)");
        return -EINVAL;
    }
    pthread_mutex_lock(&vm->lock);
    if (vm->state != VM_PAUSED) {
        snprintf(err, errlen, "cannot snapshot a VM that is %s: pause it first",
                 vm_state_name(vm->state));
        pthread_mutex_unlock(&vm->lock);
        return -EINVAL;
    }
    int r = wait_parked(vm);
    if (r < 0) {
        snprintf(err, errlen, "a vCPU did not park within %d s", PARK_TIMEOUT_MS / 1000);
        pthread_mutex_unlock(&vm->lock);
        return r;
    }
    /* vm->lock stays held: no resume, stop or second snapshot meanwhile. */
    uint64_t t0 = now_us();
    char state_tmp[4096], mem_tmp[4096];
    int state_fd = -1, mem_fd = snapfile_open_temp(p->mem_path, mem_tmp, sizeof(mem_tmp));
    if (mem_fd < 0) {
        r = mem_fd;
        snprintf(err, errlen, "cannot create the memory file next to %s: %s", p->mem_path,
                 strerror(-r));
        goto out_unlocked_nothing;
    }
    state_fd = snapfile_open_temp(p->state_path, state_tmp, sizeof(state_tmp));
    if (state_fd < 0) {
        r = state_fd;
        snprintf(err, errlen, "cannot create the state file next to %s: %s", p->state_path,
                 strerror(-r));
        goto out_files;
    }

    /* Devices stay still while their state and the RAM they write are
     * read: the event loop is held until the memory file is complete. */
    evloop_hold(&vm->loop);
    struct snap_w w;
    snap_w_init(&w);
    int hv_err = 0;
    const char *what = NULL;
    uint64_t *dirty = NULL;
    save_state(vm, &w, &hv_err, &what);
    /* After the devices finished their work (save_state drains them): what
     * they wrote counts. A Full snapshot starts the log over too. */
    if (!hv_err && (hv_err = take_dirty(vm, &dirty)) < 0)
        what = "the dirty page log";
    save_memory(vm, &w, p->diff ? dirty : NULL);
    if (hv_err) {
        r = hv_err;
        snprintf(err, errlen, "reading the state of %s failed: %s", what, strerror(-r));
    } else if (w.err) {
        r = w.err;
        snprintf(err, errlen, "collecting the VM state failed: %s", strerror(-r));
    } else if ((r = p->diff ? dump_dirty(vm, mem_fd, dirty) : guest_mem_dump(&vm->mem, mem_fd)) <
               0) {
        snprintf(err, errlen, "writing the memory file %s failed: %s", p->mem_path,
                 strerror(-r));
    }
    evloop_unhold(&vm->loop);
    if (r == 0 && (r = snapfile_write(state_fd, &w)) < 0)
        snprintf(err, errlen, "writing the state file %s failed: %s", p->state_path,
                 strerror(-r));
    size_t state_len = w.len;
    snap_w_free(&w);
    if (r == 0 && (rename(mem_tmp, p->mem_path) < 0 || rename(state_tmp, p->state_path) < 0)) {
        r = -errno;
        snprintf(err, errlen, "cannot put the snapshot in place at %s: %s", p->state_path,
                 strerror(-r));
        unlink(p->mem_path); /* a memory file without its state is no snapshot */
    }
    if (r < 0)
        untake_dirty(vm, dirty);
    free(dirty);
    if (r == 0) {
        struct stat st;
        uint64_t disk = fstat(mem_fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
        log_info("snapshot (%s): %zu bytes of state, %llu MiB of RAM (%llu MiB on disk) in %llu "
                 "ms", p->diff ? "Diff" : "Full", state_len + SNAP_HDR,
                 (unsigned long long)(vm->mem.total >> 20),
                 (unsigned long long)(disk >> 20), (unsigned long long)((now_us() - t0) / 1000));
    }
out_files:
    if (r < 0) {
        unlink(mem_tmp);
        if (state_fd >= 0)
            unlink(state_tmp);
    }
    if (state_fd >= 0)
        close(state_fd);
    close(mem_fd);
out_unlocked_nothing:
    pthread_mutex_unlock(&vm->lock);
    return r;
}

/* ---- restore ---- */

/* "host" section: same architecture and page size; the rest is the arch's. */
static int check_host(struct vm *vm, const uint8_t *st, size_t len, char *err, size_t errlen)
{
    struct snap_r r;
    int ret = snapfile_need(st, len, "host", &r, err, errlen);
    if (ret < 0)
        return ret;
    char version[64], arch[16];
    snap_get_str(&r, version, sizeof(version));
    snap_get_str(&r, arch, sizeof(arch));
    uint32_t page = snap_get_u32(&r);
    if (r.err) {
        snprintf(err, errlen, "the snapshot's host description is malformed");
        return -EPROTO;
    }
    if (strcmp(arch, SNAP_ARCH) || page != (uint32_t)sysconf(_SC_PAGESIZE)) {
        snprintf(err, errlen, "the snapshot is of an %s machine with %u-byte pages; this host "
                 "runs %s", arch, page, SNAP_ARCH);
        return -ENOTSUP;
    }
    if (strcmp(version, ARCVM_VERSION))
        log_info("restoring a snapshot taken by arcvm %s", version);
    return arch_check_host(vm->arch, &r, err, errlen);
}

/* The snapshot's configuration, the process-side settings of @runtime and
 * the user's overrides. */
static int load_config(struct vm *vm, const uint8_t *st, size_t len,
                       const struct vm_restore_params *p, char *err, size_t errlen)
{
    struct snap_r r;
    int ret = snapfile_need(st, len, "config", &r, err, errlen);
    if (ret < 0)
        return ret;
    if (config_load(&vm->cfg, &r) < 0 || vm->cfg.vcpus == 0 ||
        vm->cfg.vcpus > hv_caps(vm->hv)->max_vcpus || vm->cfg.mem_bytes < CONFIG_MEM_MIN ||
        vm->cfg.mem_bytes & ((1u << 20) - 1)) {
        snprintf(err, errlen, "the snapshot's machine configuration is malformed or beyond this "
                 "host's limits");
        return -EPROTO;
    }
    for (unsigned i = 0; i < p->nnet_overrides; i++) {
        const struct vm_net_override *o = &p->net_overrides[i];
        unsigned k = 0;
        while (k < vm->cfg.nnets && !(vm->cfg.nets[k].id && !strcmp(vm->cfg.nets[k].id, o->iface_id)))
            k++;
        if (k == vm->cfg.nnets || vm->cfg.nets[k].backend != NET_TAP) {
            snprintf(err, errlen, "network override: the snapshot has no TAP interface '%s'",
                     o->iface_id);
            return -EINVAL;
        }
        char *tap = strdup(o->host_dev_name);
        if (!tap)
            return -ENOMEM;
        free(vm->cfg.nets[k].tap);
        vm->cfg.nets[k].tap = tap;
    }
    if (p->vsock_uds_path) {
        if (!vm->cfg.vsock.enabled) {
            snprintf(err, errlen, "vsock override: the snapshot has no vsock device");
            return -EINVAL;
        }
        char *path = strdup(p->vsock_uds_path);
        if (!path)
            return -ENOMEM;
        free(vm->cfg.vsock.uds_path);
        vm->cfg.vsock.uds_path = path;
    }
    vm->nvcpus = vm->cfg.vcpus;
    return 0;
}

/* The snapshot's RAM regions must be the ones this arcvm lays out for its
 * memory size: the guest's firmware tables describe them. */
static int check_memory(struct vm *vm, const uint8_t *st, size_t len, char *err, size_t errlen)
{
    struct snap_r r;
    int ret = snapfile_need(st, len, "memory", &r, err, errlen);
    if (ret < 0)
        return ret;
    if (snap_get_u8(&r) == MEM_DIFF && !r.err) {
        snprintf(err, errlen, "this is a Diff snapshot: its memory file holds only the pages "
                 "changed since the one before; merge it onto its base first (arcvm "
                 "snapshot-merge) and restore the merged one");
        return -EINVAL;
    }
    uint32_t n = snap_get_u32(&r);
    bool ok = !r.err && n == vm->mem.count;
    for (unsigned i = 0; ok && i < n; i++) {
        uint64_t gpa = snap_get_u64(&r), size = snap_get_u64(&r);
        ok = gpa == vm->mem.r[i].gpa && size == vm->mem.r[i].size;
    }
    if (!ok || snap_r_done(&r) < 0) {
        snprintf(err, errlen, "the snapshot's memory layout differs from this arcvm's");
        return -EPROTO;
    }
    return 0;
}

static int load_devices(struct vm *vm, const uint8_t *st, size_t len, char *err, size_t errlen)
{
    char name[SNAP_NAME_MAX];
    struct snap_r r;
    for (unsigned i = 0; i < vm->nvirtio; i++) {
        snprintf(name, sizeof(name), "virtio%u", i);
        int ret = snapfile_need(st, len, name, &r, err, errlen);
        if (ret < 0)
            return ret;
        const char *dev = vm->virtio[i].dev->ops->name;
        if (snap_get_u32(&r) != vm->virtio[i].dev->ops->device_id) {
            snprintf(err, errlen, "the snapshot's device %u is not a %s", i, dev);
            return -EPROTO;
        }
        ret = virtio_mmio_load(&vm->virtio[i].mmio, &r);
        if (ret < 0) {
            snprintf(err, errlen, "the snapshot's %s state is malformed or does not fit its "
                     "configuration: %s", dev, strerror(-ret));
            return ret;
        }
    }
    snprintf(name, sizeof(name), "virtio%u", vm->nvirtio);
    if (snap_find(st, len, name, &r) == 0) {
        snprintf(err, errlen, "the snapshot has more devices than its configuration");
        return -EPROTO;
    }
    return arch_restore(vm->arch, st, len, err, errlen);
}

static int load_cpus(struct vm *vm, const uint8_t *st, size_t len, bool clock_realtime, char *err,
                     size_t errlen)
{
    struct snap_r r;
    int ret = snapfile_need(st, len, "vm", &r, err, errlen);
    if (ret < 0)
        return ret;
    ret = hv_vm_load(vm->hvm, &r, clock_realtime);
    if (ret < 0) {
        snprintf(err, errlen, "restoring the interrupt controllers and clocks failed: %s",
                 strerror(-ret));
        return ret;
    }
    char name[SNAP_NAME_MAX];
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        snprintf(name, sizeof(name), "vcpu%u", i);
        if ((ret = snapfile_need(st, len, name, &r, err, errlen)) < 0)
            return ret;
        ret = hv_vcpu_load(vm->vcpus[i].hv, &r);
        if (ret < 0) {
            snprintf(err, errlen, "restoring vCPU %u failed: %s", i,
                     ret == -EPROTO ? "its state is malformed" : strerror(-ret));
            return ret;
        }
    }
    return 0;
}

/* Everything of a restore from the checked state @st/@len. */
static int restore(struct vm *vm, const uint8_t *st, size_t len, const struct vm_restore_params *p,
                   char *err, size_t errlen)
{
    int r;
    if ((r = load_config(vm, st, len, p, err, errlen)) < 0)
        return r;
    vm->cfg.track_dirty = p->track_dirty;
    int mem_fd = p->mem_uffd ? -1 : open(p->mem_path, O_RDONLY | O_CLOEXEC);
    if (mem_fd < 0 && !p->mem_uffd) {
        r = -errno;
        snprintf(err, errlen, "cannot open the memory file %s: %s", p->mem_path, strerror(-r));
        return r;
    }
    if ((r = vm_build_platform(vm, mem_fd, p->mem_uffd ? p->mem_path : NULL, err, errlen)) < 0 ||
        (r = check_host(vm, st, len, err, errlen)) < 0 ||
        (r = check_memory(vm, st, len, err, errlen)) < 0 ||
        (r = vm_create_vcpus(vm, false, err, errlen)) < 0 ||
        (r = load_cpus(vm, st, len, p->clock_realtime, err, errlen)) < 0 ||
        (r = load_devices(vm, st, len, err, errlen)) < 0)
        return r;
    return vm_start_loop(vm, err, errlen);
}

int vm_restore(struct vm **out, const struct vm_config *runtime, const struct vm_restore_params *p,
               char *err, size_t errlen)
{
    if (!p->state_path || !*p->state_path || !p->mem_path || !*p->mem_path) {
        snprintf(err, errlen, "a restore needs the snapshot's state file and memory file");
        return -EINVAL;
    }
    /* The files first, so that a bad one is reported as such even on a host
     * without KVM (as vm_create() checks its input first). */
    uint64_t t0 = now_us();
    uint8_t *st = NULL;
    size_t len = 0;
    int r = snapfile_read(p->state_path, &st, &len, NULL, err, errlen);
    if (r < 0)
        return r;
    struct vm *vm;
    r = vm_create_for_restore(&vm, runtime, err, errlen);
    if (r < 0) {
        free(st);
        return r;
    }
    pthread_mutex_lock(&vm->lock);
    vm_set_state(vm, VM_INITIALIZING);
    pthread_mutex_unlock(&vm->lock);
    r = restore(vm, st, len, p, err, errlen);
    free(st);
    if (r < 0) {
        pthread_mutex_lock(&vm->lock);
        vm->exit.kind = VM_EXIT_ERROR;
        snprintf(vm->exit.message, sizeof(vm->exit.message), "%s", err);
        vm_set_state(vm, VM_FAILED);
        pthread_mutex_unlock(&vm->lock);
        vm_destroy(vm);
        return r;
    }
    /* The vCPU threads start parked: the VM comes up paused. */
    pthread_mutex_lock(&vm->lock);
    vm->pause_requested = true;
    atomic_store(&vm->attention, true);
    vm_set_state(vm, VM_PAUSED);
    pthread_mutex_unlock(&vm->lock);
    r = vm_start_vcpus(vm, err, errlen);
    if (r < 0) {
        vm_destroy(vm);
        return r;
    }
    log_info("restored %u vCPUs and %llu MiB in %llu us", vm->nvcpus,
             (unsigned long long)(vm->mem.total >> 20), (unsigned long long)(now_us() - t0));
    if (p->resume)
        vm_resume(vm);
    *out = vm;
    return 0;
}

