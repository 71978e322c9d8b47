/* mem.c - guest RAM allocation and the checked accessor; see mem.h. */
#include "base/guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096ull

/* Check @layout and return its total size, or 0 if invalid. */
static uint64_t layout_total(const struct guest_mem_region *layout, unsigned n)
{
    if (n == 0 || n > GUEST_MEM_MAX_REGIONS)
        return 0;
    uint64_t total = 0, prev_end = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct guest_mem_region *l = &layout[i];
        if (!l->size || (l->gpa | l->size) & (PAGE - 1) || l->gpa + l->size < l->gpa ||
            (i && l->gpa < prev_end) || total + l->size < total)
            return 0;
        prev_end = l->gpa + l->size;
        total += l->size;
    }
    return total;
}

/* Map @fd's first @total bytes (@flags: MAP_SHARED or MAP_PRIVATE, with
 * MAP_NORESERVE or not) as the RAM of @layout; takes @fd over. */
static int map_regions(struct guest_mem *m, const struct guest_mem_region *layout, unsigned n,
                       int fd, uint64_t total, int flags)
{
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED) {
        int e = -errno;
        close(fd);
        return e;
    }
    /* Guest RAM must never reach a core dump or a forked child. */
    (void)madvise(p, total, MADV_DONTDUMP);
    (void)madvise(p, total, MADV_DONTFORK);
    m->fd = fd;
    m->file_private = (flags & MAP_PRIVATE) != 0;
    m->base = p;
    m->total = total;
    m->count = n;
    uint64_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        m->r[i] = layout[i];
        m->r[i].hva = m->base + off;
        off += layout[i].size;
    }
    return 0;
}

int guest_mem_init(struct guest_mem *m, const struct guest_mem_region *layout, unsigned n)
{
    return guest_mem_init_pages(m, layout, n, GUEST_MEM_4K);
}

int guest_mem_init_pages(struct guest_mem *m, const struct guest_mem_region *layout, unsigned n,
                         enum guest_mem_pages pages)
{
    memset(m, 0, sizeof(*m));
    m->fd = -1;
    uint64_t total = layout_total(layout, n);
    if (!total)
        return -EINVAL;
    bool huge = pages == GUEST_MEM_HUGE_2M;
    if (huge) {
        /* Each region must start and end on a huge page of the memfd. */
        for (unsigned i = 0; i < n; i++)
            if ((layout[i].gpa | layout[i].size) & (GUEST_MEM_HUGE_SIZE - 1))
                return -EINVAL;
    }
    int fd = memfd_create("arcvm-ram", MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)total) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    /* MAP_NORESERVE: guest RAM is committed page by page as the guest
     * touches it, like a real machine's untouched memory costs nothing.
     * Not for huge pages: their pool is fixed, and a fault it cannot
     * serve is a SIGBUS; reserving them all now turns that into an error
     * before the guest runs. */
    int r = map_regions(m, layout, n, fd, total, MAP_SHARED | (huge ? 0 : MAP_NORESERVE));
    m->huge = r == 0 && huge;
    if (r == 0 && pages == GUEST_MEM_TRANSPARENT)
        (void)madvise(m->base, m->total, MADV_HUGEPAGE);
    return r;
}

long guest_mem_free_huge_pages(void)
{
    /* Free minus reserved: what a new reservation can still take. */
    char buf[256];
    long v[2] = {-1, -1};
    static const char *const names[2] = {"free_hugepages", "resv_hugepages"};
    for (int i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-2048kB/%s", names[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            return -1;
        buf[len] = 0;
        v[i] = strtol(buf, NULL, 10);
    }
    return v[0] >= v[1] ? v[0] - v[1] : 0;
}

int guest_mem_init_file(struct guest_mem *m, const struct guest_mem_region *layout, unsigned n,
                        int fd)
{
    memset(m, 0, sizeof(*m));
    m->fd = -1;
    uint64_t total = layout_total(layout, n);
    struct stat st;
    if (!total) {
        close(fd);
        return -EINVAL;
    }
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < total) {
        close(fd);
        return -ENODATA;
    }
    return map_regions(m, layout, n, fd, total, MAP_PRIVATE | MAP_NORESERVE);
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (size_t i = 0; i < PAGE / 8; i++)
        if (q[i])
            return false;
    return true;
}

int guest_mem_write_out(const struct guest_mem *m, int fd, uint64_t off, uint64_t len)
{
    if (off > m->total || len > m->total - off)
        return -EINVAL;
    for (uint64_t at = off; at < off + len;) {
        ssize_t w = pwrite(fd, m->base + at, off + len - at, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        at += (uint64_t)w;
    }
    return 0;
}

/* Write the non-zero pages of [off, end) of the mapping to @fd. */
static int dump_range(const struct guest_mem *m, int fd, uint64_t off, uint64_t end)
{
    while (off < end) {
        while (off < end && page_is_zero(m->base + off))
            off += PAGE;
        uint64_t run = off;
        while (run < end && !page_is_zero(m->base + run))
            run += PAGE;
        int r = run > off ? guest_mem_write_out(m, fd, off, run - off) : 0;
        if (r < 0)
            return r;
        off = run;
    }
    return 0;
}

int guest_mem_dump(const struct guest_mem *m, int fd)
{
    if (ftruncate(fd, (off_t)m->total) < 0)
        return -errno;
    /* A memfd's holes were never touched by the guest: skip them without
     * reading (a read would allocate the page). */
    uint64_t off = 0;
    while (off < m->total) {
        uint64_t data = off, hole = m->total;
        if (m->fd >= 0 && !m->file_private) {
            off_t d = lseek(m->fd, (off_t)off, SEEK_DATA);
            if (d < 0) {
                if (errno == ENXIO)
                    break; /* only holes from here on */
                return -errno;
            }
            off_t h = lseek(m->fd, d, SEEK_HOLE);
            data = (uint64_t)d;
            hole = h < 0 || (uint64_t)h > m->total ? m->total : (uint64_t)h;
        }
        int r = dump_range(m, fd, data & ~(PAGE - 1), hole);
        if (r < 0)
            return r;
        off = hole;
    }
    return 0;
}

void guest_mem_release(struct guest_mem *m)
{
    /* Uffd memory: drop our userfaultfd before unmapping. If the handler
     * is gone, that was the last reference and the unmap below sends no
     * event (it would wait for a reader forever); if it lives, it reads the
     * unmap event and finishes. */
    if (m->uffd > 0)
        close(m->uffd);
    if (m->base)
        munmap(m->base, m->total);
    if (m->fd >= 0)
        close(m->fd);
    free(m->dirty);
    memset(m, 0, sizeof(*m));
    m->fd = -1;
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    if (len == 0)
        return NULL;
    for (unsigned i = 0; i < m->count; i++) {
        const struct guest_mem_region *r = &m->r[i];
        /* gpa - r->gpa cannot underflow after the first test, and the
         * second compares without ever computing gpa + len. */
        if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len)
            return r->hva + (gpa - r->gpa);
    }
    return NULL;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len)
{
    void *p = guest_mem_ptr(m, gpa, len);
    if (!p)
        return -EFAULT;
    memcpy(dst, p, len);
    return 0;
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
    void *p = guest_mem_ptr(m, gpa, len);
    if (!p)
        return -EFAULT;
    memcpy(p, src, len);
    guest_mem_mark_dirty(m, p, len);
    return 0;
}

int guest_mem_discard(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    if ((gpa | len) & (PAGE - 1))
        return -EINVAL;
    uint8_t *p = guest_mem_ptr(m, gpa, len);
    if (!p)
        return -EINVAL;
    if (m->huge) {
        /* Huge pages stay: a 4 KiB piece of one cannot be given back, and
         * a whole one punched out would leave the pool and lose its
         * reservation, so touching it again could fault with SIGBUS. The
         * guest asked for nothing it relies on (balloon pages may keep
         * their contents), as Firecracker's balloon on huge pages. */
        return 0;
    }
    /* The pages change (to zeros) behind KVM's back: a Diff must carry them. */
    guest_mem_mark_dirty(m, p, len);
    if (m->uffd > 0) {
        /* Uffd memory is anonymous: dropping the pages frees them, and the
         * page-fault handler, told by a REMOVE event, fills them with
         * zeros when they are touched again. */
        return madvise(p, len, MADV_DONTNEED) < 0 ? -errno : 0;
    }
    if (m->file_private) {
        /* Dropping a private page would bring back the file's copy; fresh
         * anonymous memory over it reads as zeros and frees the page. */
        void *q = mmap(p, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        if (q == MAP_FAILED)
            return -errno;
        /* As guest_mem_init() marks the whole mapping. */
        (void)madvise(q, len, MADV_DONTDUMP);
        (void)madvise(q, len, MADV_DONTFORK);
        return 0;
    }
    /* The RAM is a shared memfd mapping: dropping the pages from the page
     * tables would keep them in the file; punching a hole frees them. */
    off_t off = (off_t)(p - m->base);
    if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)len) < 0)
        return -errno;
    return 0;
}

uint64_t guest_mem_room(const struct guest_mem *m, uint64_t gpa)
{
    for (unsigned i = 0; i < m->count; i++) {
        const struct guest_mem_region *r = &m->r[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size)
            return r->size - (gpa - r->gpa);
    }
    return 0;
}

int guest_mem_gpa(const struct guest_mem *m, const void *hva, uint64_t len, uint64_t *gpa)
{
    uintptr_t p = (uintptr_t)hva;
    for (unsigned i = 0; i < m->count; i++) {
        uintptr_t s = (uintptr_t)m->r[i].hva;
        /* Subtractions only: no sum of caller values can overflow. */
        if (p >= s && p - s < m->r[i].size && len <= m->r[i].size - (p - s)) {
            *gpa = m->r[i].gpa + (p - s);
            return 0;
        }
    }
    return -EFAULT;
}
