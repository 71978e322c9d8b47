/* api_hotplug.c - /hotplug/memory: Firecracker's memory hotplug, a
 * virtio-mem region configured before boot (PUT) and resized after it
 * (PATCH); GET shows the configuration and what the guest has plugged. */
#include "api/api_internal.h"

#include <stdio.h>

json_t *api_memhp_json(const struct api *a)
{
    if (!a->memhp.set)
        return json_null();
    return json_pack("{s:i,s:i,s:i}", "total_size_mib", (json_int_t)a->memhp.total_mib,
                     "block_size_mib", (json_int_t)a->memhp.block_mib, "slot_size_mib",
                     (json_int_t)a->memhp.slot_mib);
}

/* Firecracker's bounds (its MemoryHotplugConfig), checked in its order. */
static const char *config_fault(uint64_t total, uint64_t block, uint64_t slot)
{
    if (block < 2)
        return "Block size must not be lower than 2 MiB.";
    if (block & (block - 1))
        return "Block size must be a power of 2.";
    if (slot < 128)
        return "Slot size must not be lower than 128 MiB.";
    if (slot % block)
        return "Slot size must be a multiple of block size.";
    if (total < slot)
        return "Total size must not be lower than slot size.";
    if (total % slot)
        return "Total size must be a multiple of slot size.";
    return NULL;
}

static const struct api_json_field memhp_fields[] = {
    {"total_size_mib", API_JSON_UINT, true, 1u << 20}, /* 1 TiB: virtio/mem.h's bound */
    {"block_size_mib", API_JSON_UINT, false, 1u << 20},
    {"slot_size_mib", API_JSON_UINT, false, 1u << 20},
};
const struct api_schema api_memhp_put_schema = {.what = "memory hotplug configuration",
                                                API_SCHEMA_FIELDS(memhp_fields)};

void api_memhp_put(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    uint64_t total = api_json_uint(b, "total_size_mib", 0);
    uint64_t block = api_json_uint(b, "block_size_mib", 2);
    uint64_t slot = api_json_uint(b, "slot_size_mib", 128);
    const char *fault = config_fault(total, block, slot);
    if (fault) {
        api_fault(a, r, 400, "Invalid memory hotplug configuration: %s", fault);
        return;
    }
    a->memhp = (struct api_memhp){.set = true,
                                  .total_mib = (uint32_t)total,
                                  .block_mib = (uint32_t)block,
                                  .slot_mib = (uint32_t)slot};
    api_ok(r);
}

void api_memhp_get(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (!a->memhp.set) {
        api_fault(a, r, 400, "Memory hotplug is not configured: PUT /hotplug/memory first.");
        return;
    }
    json_t *o = api_memhp_json(a);
    uint64_t plugged = 0, requested = a->memhp.requested_mib;
    struct arcvm_memory_hotplug info;
    if (a->started && arcvm_memory_hotplug_get(a->vm, &info) == 0) {
        plugged = info.plugged_mib;
        requested = info.requested_mib;
    }
    json_object_set_new(o, "plugged_size_mib", json_integer((json_int_t)plugged));
    json_object_set_new(o, "requested_size_mib", json_integer((json_int_t)requested));
    api_reply_json(r, 200, o);
}

static bool memhp_configured(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    if (a->memhp.set)
        return true;
    api_fault(a, r, 400, "Memory hotplug is not configured: PUT /hotplug/memory first.");
    return false;
}

static const struct api_json_field memhp_patch_fields[] = {
    {"requested_size_mib", API_JSON_UINT, true, 1u << 20}};
const struct api_schema api_memhp_patch_schema = {.what = "memory hotplug size update",
                                                  API_SCHEMA_FIELDS(memhp_patch_fields),
                                                  .check = memhp_configured};

void api_memhp_patch(struct api *a, const char *id, const json_t *b, struct api_reply *r)
{
    uint64_t mib = api_json_uint(b, "requested_size_mib", 0);
    if (mib % a->memhp.block_mib) {
        api_fault(a, r, 400, "The requested size (%llu MiB) must be a multiple of the block size "
                  "(%u MiB).", (unsigned long long)mib, a->memhp.block_mib);
        return;
    }
    if (mib > a->memhp.total_mib) {
        api_fault(a, r, 400, "The requested size (%llu MiB) must not exceed the total size "
                  "(%u MiB).", (unsigned long long)mib, a->memhp.total_mib);
        return;
    }
    if (arcvm_memory_hotplug_request(a->vm, (uint32_t)mib) < 0) {
        api_fault(a, r, 400, "Cannot update the hotplug memory: %s", arcvm_last_error(a->vm));
        return;
    }
    a->memhp.requested_mib = (uint32_t)mib;
    api_ok(r);
}
