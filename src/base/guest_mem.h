/* mem.h - guest RAM: memfd-backed regions and the one checked accessor.
 *
 * All guest RAM lives in one memfd (so it can later be shared, snapshotted or
 * handed to another process) mapped once; each region is a window of it at a
 * guest-physical address. Every access to guest memory from the VMM goes
 * through guest_mem_ptr() or the copy helpers, which never return a pointer
 * outside the mapping whatever gpa/len the guest supplies.
 */
#ifndef ARCVM_BASE_GUEST_MEM_H
#define ARCVM_BASE_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 4

/* What backs guest RAM (Firecracker's machine-config huge_pages). */
enum guest_mem_pages {
    GUEST_MEM_4K,          /* ordinary shared memory, committed on first touch */
    GUEST_MEM_HUGE_2M,     /* hugetlbfs 2 MiB pages, reserved from the host's
                            * pool when the RAM is created */
    GUEST_MEM_TRANSPARENT, /* 4 KiB memory advised for transparent huge pages
                            * (taken when the host's shmem THP setting allows) */
};
#define GUEST_MEM_HUGE_SIZE (2ull << 20)

struct guest_mem_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *hva;
};

struct guest_mem {
    int fd;           /* the memfd (or the file of a private mapping), -1: none */
    bool file_private; /* a snapshot's memory file, mapped copy-on-write */
    bool huge;        /* hugetlbfs pages, all reserved (GUEST_MEM_HUGE_2M) */
    uint8_t *base;    /* mapping of the whole memfd */
    uint64_t total;   /* bytes mapped */
    unsigned count;
    struct guest_mem_region r[GUEST_MEM_MAX_REGIONS];
    /* Pages the VMM wrote for the guest (devices: used rings, buffers they
     * fill), one bit per page of the whole mapping, for Diff snapshots
     * (KVM's dirty log sees only the guest's own writes). NULL: not
     * tracked. Set with atomic ORs from any thread. */
    uint64_t *dirty;
    int uffd; /* Uffd memory (guest_mem_init_uffd): the VMM's reference to
               * the userfaultfd, closed on release; 0: not Uffd memory */
};

/* Create RAM for @n regions (gpa, size) given in ascending, non-overlapping
 * order, page aligned. On failure nothing is left allocated. */
int guest_mem_init(struct guest_mem *m, const struct guest_mem_region *layout, unsigned n);
/* The same backed by @pages. GUEST_MEM_HUGE_2M needs every region 2 MiB
 * aligned (-EINVAL otherwise) and reserves all of the RAM's huge pages at
 * once: -ENOMEM when the host's pool has too few free (a guest touching a
 * page the pool cannot give would otherwise kill the VMM with SIGBUS). */
int guest_mem_init_pages(struct guest_mem *m, const struct guest_mem_region *layout, unsigned n,
                         enum guest_mem_pages pages);
/* Free 2 MiB huge pages in the host's pool (not yet reserved), -1 unknown. */
long guest_mem_free_huge_pages(void);
void guest_mem_release(struct guest_mem *m);
/* The same from a snapshot's memory file @fd (taken over: closed on release
 * or failure), the regions laid out one after another from offset 0 as
 * guest_mem_init() lays them in its memfd. The file is mapped private: pages
 * come in on first touch and guest writes never reach it. -EINVAL for a bad
 * layout, -ENODATA when the file is shorter than the layout. */
int guest_mem_init_file(struct guest_mem *m, const struct guest_mem_region *layout, unsigned n,
                        int fd);
/* Write all of guest RAM to @fd (a new, empty file) in that layout, as a
 * sparse file: pages that hold only zeros become holes. */
int guest_mem_dump(const struct guest_mem *m, int fd);
/* Write bytes [off, off+len) of the RAM (offsets as in that layout) to the
 * same offsets of @fd, zeros included. */
int guest_mem_write_out(const struct guest_mem *m, int fd, uint64_t off, uint64_t len);

/* Host pointer for [gpa, gpa+len) if it lies entirely inside one region,
 * else NULL. len must be > 0. Overflow-safe for any inputs. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Copy helpers; -EFAULT when the range is not entirely guest RAM. */
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len);
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

/* Give the host back the RAM of [gpa, gpa+len) (balloon inflation): the
 * pages read as zeros afterwards; huge-page RAM keeps its pages and their
 * contents (nothing is given back). Page-aligned, inside one region, else
 * -EINVAL; -errno from the host. */
int guest_mem_discard(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* ---- dirty tracking (guest_mem_dirty.c) ---- */
/* Start (allocate a clear bitmap) or stop recording the VMM's writes. */
int guest_mem_track_dirty(struct guest_mem *m, bool on);
/* Record that [hva, hva+len) of the mapping was written; nothing when not
 * tracking or outside the mapping. Any thread; a few atomic ORs. Inline:
 * the virtqueue walk calls it for every writable buffer, and without
 * tracking it must cost one load and a branch, not a call. */
void guest_mem_mark_dirty_slow(const struct guest_mem *m, const void *hva, uint64_t len);
static inline void guest_mem_mark_dirty(const struct guest_mem *m, const void *hva, uint64_t len)
{
    if (m->dirty)
        guest_mem_mark_dirty_slow(m, hva, len);
}
/* OR the recorded pages of region @i into @bits (one bit per page of the
 * region) and clear them. */
void guest_mem_take_dirty(const struct guest_mem *m, unsigned i, uint64_t *bits);

/* Bytes of RAM at or above @gpa up to the end of its region (0 if none). */
uint64_t guest_mem_room(const struct guest_mem *m, uint64_t gpa);
/* The reverse of guest_mem_ptr(): the guest-physical address of the host
 * pointer @hva, when [hva, hva+len) lies inside one region. 0, or -EFAULT. */
int guest_mem_gpa(const struct guest_mem *m, const void *hva, uint64_t len, uint64_t *gpa);

/* ---- Uffd memory: pages supplied by a page-fault handler (guest_mem_uffd.c) ---- */
/* Guest RAM for @layout (as guest_mem_init()) as anonymous memory
 * (MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, m->fd -1) registered with a new
 * userfaultfd for missing-page faults and for the REMOVE (MADV_DONTNEED:
 * balloon, guest_mem_discard()) and UNMAP (release) events; then connect to
 * the page-fault handler listening on the Unix socket @sock_path and send
 * it, in one message, the uffd (SCM_RIGHTS) and the layout as Firecracker
 * does: a JSON array of {"base_host_virt_addr", "size", "offset",
 * "page_size" (bytes), "page_size_kib"}, offsets laid out one after another
 * from 0 as guest_mem_init() lays them in its memfd. On return the handler
 * owns serving faults: every first touch of a page blocks until it does
 * (and forever if it died: m->uffd keeps the userfaultfd alive so that RAM
 * never silently reads as zeros). -errno with a sentence in @err (no
 * handler listening: -ENOENT or -ECONNREFUSED; userfaultfd not permitted:
 * -EPERM, saying how to allow it); nothing is left behind on failure.
 * Call from a thread whose filters allow userfaultfd(2) (or opening
 * /dev/userfaultfd), ioctl, mmap, socket, connect and sendmsg. */
int guest_mem_init_uffd(struct guest_mem *m, const struct guest_mem_region *layout, unsigned n,
                        const char *sock_path, char *err, size_t errlen);

#endif
