/* api_metrics.h - Firecracker-style metrics lines: one JSON object per flush
 * with the counters' change since the previous flush. */
#ifndef ARCVM_API_METRICS_H
#define ARCVM_API_METRICS_H

#include "arcvm.h"

#include <stdint.h>

/* API request counters, named as in Firecracker's metrics
 * (get_api_requests, put_api_requests, patch_api_requests). */
enum api_ctr {
    API_CTR_GET_INSTANCE_INFO,
    API_CTR_GET_MACHINE_CFG,
    API_CTR_GET_VMM_VERSION,
    API_CTR_GET_VM_CONFIG,
    API_CTR_PUT_ACTIONS,
    API_CTR_PUT_ACTIONS_FAILS,
    API_CTR_PUT_BOOT_SOURCE,
    API_CTR_PUT_BOOT_SOURCE_FAILS,
    API_CTR_PUT_DRIVE,
    API_CTR_PUT_DRIVE_FAILS,
    API_CTR_PUT_LOGGER,
    API_CTR_PUT_LOGGER_FAILS,
    API_CTR_PUT_MACHINE_CFG,
    API_CTR_PUT_MACHINE_CFG_FAILS,
    API_CTR_PUT_METRICS,
    API_CTR_PUT_METRICS_FAILS,
    API_CTR_PUT_NETWORK,
    API_CTR_PUT_NETWORK_FAILS,
    API_CTR_PUT_VSOCK,
    API_CTR_PUT_VSOCK_FAILS,
    API_CTR_PUT_ENTROPY,
    API_CTR_PUT_ENTROPY_FAILS,
    API_CTR_PUT_BALLOON,
    API_CTR_PUT_BALLOON_FAILS,
    API_CTR_PUT_CPU_CONFIG,
    API_CTR_PUT_CPU_CONFIG_FAILS,
    API_CTR_PUT_SERIAL,
    API_CTR_PUT_SERIAL_FAILS,
    API_CTR_PATCH_DRIVE,
    API_CTR_PATCH_DRIVE_FAILS,
    API_CTR_PATCH_NETWORK,
    API_CTR_PATCH_NETWORK_FAILS,
    API_CTR_PATCH_MACHINE_CFG,
    API_CTR_PATCH_MACHINE_CFG_FAILS,
    API_CTR_PATCH_VM,
    API_CTR_PATCH_VM_FAILS,
    API_CTR_PATCH_BALLOON,
    API_CTR_PATCH_BALLOON_FAILS,
    API_CTR_PUT_PMEM,
    API_CTR_PUT_PMEM_FAILS,
    API_CTR_PATCH_PMEM,
    API_CTR_PATCH_PMEM_FAILS,
    API_CTR_OTHER,
    API_CTR_OTHER_FAILS, /* unknown paths, methods a path lacks */
    API_CTR_COUNT,
    API_CTR_NONE = -1,
};

/* What was last written, so the next line carries differences. */
struct api_metrics {
    uint64_t ctr[API_CTR_COUNT];
    struct arcvm_metrics vm;
};

/* One metrics snapshot to render. */
struct api_metrics_input {
    uint64_t utc_ms;                     /* wall-clock time of the flush */
    uint64_t startup_us, startup_cpu_us; /* process start to API ready */
    const uint64_t *ctr;                 /* API_CTR_COUNT request counters */
    const struct arcvm_metrics *vm;      /* the VM's counters (zeros before start) */
    const char *const *drive_ids;        /* drive_id of the i-th virtio-blk device */
    unsigned ndrives;
};

/* Render @in as one line of JSON (with the trailing newline) holding every
 * counter's increase since the previous call on @m (Firecracker's
 * SharedIncMetric semantics), and remember @in's values in @m. Returns a
 * malloc'd string, or NULL when out of memory. */
char *api_metrics_render(struct api_metrics *m, const struct api_metrics_input *in);

#endif
