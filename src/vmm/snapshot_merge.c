/* snapshot_merge.c - Diff snapshots applied onto their base (vm.h:
 * vm_snapshot_merge), like Firecracker's rebase-snap, but driven by the
 * page runs each Diff's state lists rather than by holes in its file (a
 * file system without SEEK_DATA would otherwise copy zeros over the base). */
#include "vmm/vm.h"

#include "base/guest_mem.h"
#include "vmm/snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The runs of a Diff's "memory" section, checked against @total bytes:
 * *@runs is malloc'd pairs (first page, page count). */
static int diff_runs(const uint8_t *st, size_t len, uint64_t *total, uint64_t **runs,
                     uint64_t *nruns, const char *path, char *err, size_t errlen)
{
    struct snap_r r;
    if (snapfile_need(st, len, "memory", &r, err, errlen) < 0)
        return -EPROTO;
    if (snap_get_u8(&r) != MEM_DIFF) {
        snprintf(err, errlen, "%s is not a Diff snapshot", path);
        return -EINVAL;
    }
    uint32_t n = snap_get_u32(&r);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n && i <= GUEST_MEM_MAX_REGIONS && !r.err; i++) {
        (void)snap_get_u64(&r);
        sum += snap_get_u64(&r) / SNAP_PAGE * SNAP_PAGE;
    }
    uint64_t k = snap_get_u64(&r), pages = sum / SNAP_PAGE;
    if (r.err || n > GUEST_MEM_MAX_REGIONS || k > pages || (*total && *total != sum)) {
        snprintf(err, errlen, "%s: its memory description is malformed or of another size",
                 path);
        return -EPROTO;
    }
    *total = sum;
    *runs = calloc(k ? 2 * k : 1, sizeof(uint64_t));
    if (!*runs)
        return -ENOMEM;
    for (uint64_t i = 0; i < k; i++) {
        uint64_t first = snap_get_u64(&r), cnt = snap_get_u64(&r);
        if (first > pages || cnt > pages - first)
            r.err = -EPROTO;
        (*runs)[2 * i] = first;
        (*runs)[2 * i + 1] = cnt;
    }
    *nruns = k;
    if (snap_r_done(&r) < 0) {
        free(*runs);
        *runs = NULL;
        snprintf(err, errlen, "%s: its memory description is malformed", path);
        return -EPROTO;
    }
    return 0;
}

static int copy_range(int from, int to, uint64_t off, uint64_t len)
{
    static __thread uint8_t buf[1 << 20];
    while (len) {
        size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        ssize_t got = pread(from, buf, n, (off_t)off);
        if (got <= 0)
            return got < 0 ? -errno : -ENODATA;
        int r = 0;
        for (ssize_t done = 0; done < got && r == 0;) {
            ssize_t w = pwrite(to, buf + done, (size_t)(got - done), (off_t)(off + done));
            if (w <= 0)
                r = w < 0 ? -errno : -EIO;
            else
                done += w;
        }
        if (r < 0)
            return r;
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return 0;
}

/* The newest diff's state with its "memory" section made a Full one's. */
static int full_state(const uint8_t *st, size_t len, struct snap_w *w)
{
    size_t off = 0;
    char name[SNAP_NAME_MAX];
    struct snap_r body;
    int k;
    while ((k = snap_next(st, len, &off, name, &body)) > 0) {
        snap_begin(w, name);
        if (strcmp(name, "memory")) {
            snap_put(w, body.p, body.left);
        } else {
            (void)snap_get_u8(&body);
            uint32_t n = snap_get_u32(&body);
            snap_put_u8(w, MEM_FULL);
            snap_put_u32(w, n);
            for (uint32_t i = 0; i < n && i <= GUEST_MEM_MAX_REGIONS; i++) {
                snap_put_u64(w, snap_get_u64(&body));
                snap_put_u64(w, snap_get_u64(&body));
            }
        }
        snap_end(w);
    }
    return k < 0 ? k : w->err;
}

int vm_snapshot_merge(const char *base_mem, unsigned n, const char *const *diff_states,
                      const char *const *diff_mems, const char *state_out, char *err,
                      size_t errlen)
{
    if (!n) {
        snprintf(err, errlen, "nothing to merge: give at least one Diff snapshot");
        return -EINVAL;
    }
    int base = open(base_mem, O_RDWR | O_CLOEXEC);
    if (base < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open the base memory file %s: %s", base_mem, strerror(e));
        return -e;
    }
    struct stat st;
    uint64_t total = fstat(base, &st) == 0 ? (uint64_t)st.st_size : 0;
    uint8_t **states = calloc(n, sizeof(*states));
    size_t *lens = calloc(n, sizeof(*lens));
    uint64_t **runs = calloc(n, sizeof(*runs)), *nruns = calloc(n, sizeof(*nruns));
    int *fds = calloc(n, sizeof(*fds));
    int r = states && lens && runs && nruns && fds ? 0 : -ENOMEM;
    for (unsigned i = 0; i < n && fds; i++)
        fds[i] = -1;
    /* Everything checked before the base is touched. */
    for (unsigned i = 0; i < n && r == 0; i++) {
        if ((r = snapfile_read(diff_states[i], &states[i], &lens[i], NULL, err, errlen)) < 0 ||
            (r = diff_runs(states[i], lens[i], &total, &runs[i], &nruns[i], diff_states[i], err,
                           errlen)) < 0)
            break;
        fds[i] = open(diff_mems[i], O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0 || fstat(fds[i], &st) < 0 || (uint64_t)st.st_size != total) {
            r = fds[i] < 0 ? -errno : -EINVAL;
            snprintf(err, errlen, "the Diff memory file %s %s", diff_mems[i],
                     fds[i] < 0 ? "cannot be opened" : "is not as long as the guest's RAM");
        }
    }
    if (r == 0 && fstat(base, &st) == 0 && (uint64_t)st.st_size != total) {
        snprintf(err, errlen, "the base memory file %s is not as long as the Diffs' RAM",
                 base_mem);
        r = -EINVAL;
    }
    for (unsigned i = 0; i < n && r == 0; i++)
        for (uint64_t k = 0; k < nruns[i] && r == 0; k++)
            if ((r = copy_range(fds[i], base, runs[i][2 * k] * SNAP_PAGE, runs[i][2 * k + 1] * SNAP_PAGE)) <
                0)
                snprintf(err, errlen, "copying %s onto %s failed: %s", diff_mems[i], base_mem,
                         strerror(-r));
    if (r == 0) {
        struct snap_w w;
        snap_w_init(&w);
        char tmp[4096];
        int fd = -1;
        if ((r = full_state(states[n - 1], lens[n - 1], &w)) < 0 ||
            (fd = r = snapfile_open_temp(state_out, tmp, sizeof(tmp))) < 0 ||
            (r = snapfile_write(fd, &w)) < 0 || (r = rename(tmp, state_out) < 0 ? -errno : 0))
            snprintf(err, errlen, "writing the merged state %s failed: %s", state_out,
                     strerror(-r));
        if (fd >= 0) {
            if (r < 0)
                unlink(tmp);
            close(fd);
        }
        snap_w_free(&w);
    }
    for (unsigned i = 0; i < n && fds; i++) {
        if (states)
            free(states[i]);
        if (runs)
            free(runs[i]);
        if (fds[i] >= 0)
            close(fds[i]);
    }
    free(states);
    free(lens);
    free(runs);
    free(nruns);
    free(fds);
    close(base);
    return r;
}
