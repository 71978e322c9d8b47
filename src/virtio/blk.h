/* blk.h - virtio block device (virtio 1.2, 5.2) on a raw image (host/disk.h). */
#ifndef ARCVM_VIRTIO_BLK_H
#define ARCVM_VIRTIO_BLK_H

#include "base/ratelimit.h"
#include "virtio/virtio.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One --disk PATH[,ro][,id=NAME]. */
struct disk_config {
    char *path;
    bool readonly;
    char *id;        /* serial number the guest reads (GET_ID), NULL: derived */
    struct rate_limiter_config rl; /* Firecracker's rate_limiter; zero: none */
};
struct evloop;

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_GEOMETRY     4
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_CONFIG_WCE   11
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types (5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_GET_LIFETIME 10
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_T_SECURE_ERASE 14

/* Status byte values (5.2.6). */
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

/* Flag of struct virtio_blk_discard_write_zeroes (5.2.6). */
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1u

/* GET_ID answers with this many bytes, NUL-padded, unterminated if full. */
#define VIRTIO_BLK_ID_BYTES 20

/* What arcvm offers and advertises. */
#define VIRTIO_BLK_QUEUE_SIZE 256 /* entries of the one request queue */
/* Data segments per request: the queue size less the header and status
 * descriptors, as Linux sizes its requests for a direct (non-indirect) chain. */
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2)
/* DISCARD deallocates (a hole punch is cheap whatever its size): 2 GiB per
 * request keeps num_sectors far below 32-bit overflow. */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS (1u << 22)
/* WRITE_ZEROES may fall back to writing real zeros: 32 MiB per request
 * bounds how long one request can occupy the host. */
#define VIRTIO_BLK_MAX_WRITE_ZEROES_SECTORS (1u << 16)
/* Page-sized discard granularity: smaller punches free nothing on the
 * host's 4 KiB-block file systems. */
#define VIRTIO_BLK_DISCARD_ALIGNMENT 8

/* The device configuration layout (5.2.4), little-endian fields. */
struct virtio_blk_config {
    uint64_t capacity; /* in 512-byte sectors */
    uint32_t size_max;
    uint32_t seg_max;
    struct {
        uint16_t cylinders;
        uint8_t heads;
        uint8_t sectors;
    } geometry;
    uint32_t blk_size;
    struct {
        uint8_t physical_block_exp;
        uint8_t alignment_offset;
        uint16_t min_io_size;
        uint32_t opt_io_size;
    } topology;
    uint8_t writeback;
    uint8_t unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
    uint32_t max_secure_erase_sectors;
    uint32_t max_secure_erase_seg;
    uint32_t secure_erase_sector_alignment;
    struct {
        uint32_t zone_sectors;
        uint32_t max_open_zones;
        uint32_t max_active_zones;
        uint32_t max_append_sectors;
        uint32_t write_granularity;
        uint8_t model;
        uint8_t unused2[3];
    } zoned;
};
_Static_assert(sizeof(struct virtio_blk_config) == 96, "virtio_blk_config layout (5.2.4)");

/* Create a block device for @cfg's image, doing its I/O on @loop (the
 * disk's completion eventfd is watched there). The image is opened and
 * locked now (O_RDONLY and a read lock for cfg->readonly). Returns the
 * device, freed through its ops->release (which also leaves @loop and closes
 * the image), or NULL with errno set and one user-facing sentence in @err. */
struct virtio_device *virtio_blk_create(const struct guest_mem *mem, const struct disk_config *cfg,
                                        struct evloop *loop, char *err, size_t errlen);

/* New rate limits for a running disk (Firecracker's PATCH /drives/{id}).
 * -ENODEV if @d is no virtio-blk, -EINVAL for bad limits. */
int virtio_blk_set_rate_limiter(struct virtio_device *d, const struct rate_limiter_config *c);

/* Firecracker's PATCH /drives/{id} path_on_host: back the running disk @d
 * with the image at @path instead (opened read-only if the disk is, and
 * locked). Requests in flight complete on the old image first; then the
 * capacity becomes the new image's and the driver gets a configuration
 * interrupt. @path may be the current image, to pick up a new size.
 * Returns 0, or -errno with one user-facing sentence in @err and the old
 * image still in use: -ENODEV if @d is no virtio-blk, else disk_reopen()'s. */
int virtio_blk_swap_image(struct virtio_device *d, const char *path, char *err, size_t errlen);

#endif
