/* fuse-attack.c - a hostile virtio-fs driver, run as root inside a test guest.
 *
 * It takes the virtio-fs device with tag TAG away from the kernel (see
 * mmio-driver.h) and sends raw FUSE requests on its queues: requests
 * before INIT, names with '/' and "..", empty and unterminated names, a
 * lookup through a symlink that points out of the share, OPEN of a fifo and
 * of a device node the host made in the share, a flood of LOOKUPs without
 * FORGET, malformed lengths, unknown opcodes, FORGETs (which get no reply).
 * It prints one line per attack with what the server answered, then hands
 * the device back to the kernel. The test around it holds the expected
 * answers and checks the host.
 *
 * Usage: fuse-attack TAG [FLOOD]
 *   Run it while no other virtio-fs device is mounted: a candidate whose
 *   tag is not TAG is unbound and bound again. The share must hold, made
 *   by the host: "plain" (a file), "fifo", "devnode" (a character device),
 *   "escape" (a symlink to a file outside the share), "escdir" (a symlink to
 *   a directory outside it) and FLOOD (default 600) files f0, f1, ...
 * Output: "FUSE <attack> <answer>" lines, where the answer is OK, an errno
 *   name (EINVAL...), NOREPLY (nothing written, used length 0), TIMEOUT (no
 *   used entry in 2 s) or BAD-<what> (a malformed reply); a flood line;
 *   then "FUSE-DONE <n> attacks", or "ATTACK-FAIL <why>" (exit 1).
 */
#include "mmio-driver.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QSIZE 16
#define HIPRIO 0
#define REQUEST 1
#define VIRTIO_ID_FS 26
#define TAG_MAX 36

/* Pages: per queue a descriptor table, a driver and a device area (6),
 * then one page for the request and one for the reply. */
static uint8_t *mem;
static uint64_t phys[8];
#define INBUF (mem + 6 * 4096)
#define OUTBUF (mem + 7 * 4096)
#define IN_PHYS (phys[6])
#define OUT_PHYS (phys[7])

static uint16_t last_used[2];
static uint64_t next_unique = 1;
static unsigned attacks;

static struct desc *descs(unsigned q) { return (struct desc *)(mem + q * 3 * 4096); }
static volatile uint16_t *avail(unsigned q) { return (uint16_t *)(mem + (q * 3 + 1) * 4096); }
static volatile uint8_t *used(unsigned q) { return mem + (q * 3 + 2) * 4096; }

/* Is platform device @plat a virtio-fs device the kernel drives? */
static int is_fs(const char *plat)
{
    char path[512];
    snprintf(path, sizeof(path), "/sys/bus/platform/devices/%s", plat);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int fs = 0;
    while (!fs && (e = readdir(d))) {
        if (strncmp(e->d_name, "virtio", 6) || !strcmp(e->d_name, "virtio-mmio"))
            continue;
        snprintf(path, sizeof(path), "/sys/bus/platform/devices/%s/%s/device", plat, e->d_name);
        FILE *f = fopen(path, "r");
        char id[16] = "";
        if (f && fgets(id, sizeof(id), f))
            fs = strtoul(id, NULL, 16) == VIRTIO_ID_FS;
        if (f)
            fclose(f);
    }
    closedir(d);
    return fs;
}

/* Take the virtio-fs device tagged @tag: its registers mapped, unbound. */
static int take_fs(const char *tag, char *plat, size_t plen)
{
    DIR *d = opendir("/sys/bus/platform/devices");
    if (!d)
        die("/sys/bus/platform/devices");
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) {
        uint64_t base;
        if (strncmp(e->d_name, "LNRO0005:", 9) || strlen(e->d_name) >= plen ||
            !is_fs(e->d_name) || iomem_base(e->d_name, &base) < 0)
            continue;
        mmio_take(e->d_name, base);
        char t[TAG_MAX + 1] = "";
        for (unsigned i = 0; i < TAG_MAX; i += 4) {
            uint32_t w = rd(REG_CONFIG + i);
            memcpy(t + i, &w, 4);
        }
        if (rd(REG_MAGIC) == MMIO_MAGIC && rd(REG_DEVICE_ID) == VIRTIO_ID_FS && !strcmp(t, tag)) {
            memcpy(plat, e->d_name, strlen(e->d_name) + 1);
            printf("FUSE target %s at 0x%" PRIx64 "\n", plat, base);
            found = 1;
        } else {
            mmio_give_back(e->d_name);
        }
    }
    closedir(d);
    return found ? 0 : -1;
}

static void start(void)
{
    memset(mem, 0, 6 * 4096);
    last_used[0] = last_used[1] = 0;
    mmio_begin(0, 1 /* VERSION_1 */);
    for (unsigned q = 0; q < 2; q++)
        mmio_queue(q, QSIZE, phys[q * 3], phys[q * 3 + 1], phys[q * 3 + 2]);
    if (mmio_live() & ST_NEEDS_RESET) {
        printf("ATTACK-FAIL the device refused a well-formed start\n");
        exit(1);
    }
}

/* Send the @inlen request bytes in INBUF with @outlen bytes for the reply
 * (pre-filled with 0xa5) on queue @q; the used length, or -1 after 2 s. */
static long send(unsigned q, uint32_t inlen, uint32_t outlen)
{
    struct desc *dt = descs(q);
    memset(OUTBUF, 0xa5, 4096);
    dt[0] = (struct desc){IN_PHYS, inlen, outlen ? F_NEXT : 0, 1};
    dt[1] = (struct desc){OUT_PHYS, outlen, F_WRITE, 0};
    uint16_t idx = avail(q)[1];
    avail(q)[2 + idx % QSIZE] = 0;
    __sync_synchronize();
    avail(q)[1] = (uint16_t)(idx + 1);
    __sync_synchronize();
    wr(REG_QUEUE_NOTIFY, q);
    for (int i = 0; i < 20000; i++) {
        __sync_synchronize();
        if (*(volatile uint16_t *)(used(q) + 2) != last_used[q]) {
            uint32_t len = *(volatile uint32_t *)(used(q) + 4 + 8 * (last_used[q] % QSIZE) + 4);
            last_used[q]++;
            wr(REG_INTERRUPT_ACK, rd(REG_INTERRUPT_STATUS));
            return len;
        }
        usleep(100);
    }
    return -1;
}

/* A request in INBUF: the header, then @arglen bytes of @arg; its length. */
static uint32_t build(uint32_t op, uint64_t nodeid, const void *arg, uint32_t arglen)
{
    struct fuse_in_header h = {.len = (uint32_t)sizeof(h) + arglen, .opcode = op,
                               .unique = next_unique++, .nodeid = nodeid};
    memcpy(INBUF, &h, sizeof(h));
    if (arglen)
        memcpy(INBUF + sizeof(h), arg, arglen);
    return h.len;
}

/* What the server answered, as a word; *@reply_len the payload's length. */
static const char *answer(long n, size_t *payload)
{
    static char buf[32];
    struct fuse_out_header oh;
    uint64_t unique;
    memcpy(&unique, INBUF + 8, 8);
    if (payload)
        *payload = 0;
    if (n < 0)
        return (rd(REG_STATUS) & ST_NEEDS_RESET) ? "BAD-NEEDS-RESET" : "TIMEOUT";
    if (n == 0)
        return "NOREPLY";
    if ((size_t)n < sizeof(oh))
        return "BAD-SHORT";
    memcpy(&oh, OUTBUF, sizeof(oh));
    if (oh.len != n)
        return "BAD-LEN";
    if (oh.unique != unique)
        return "BAD-UNIQUE";
    if (oh.error == 0) {
        if (payload)
            *payload = (size_t)n - sizeof(oh);
        return "OK";
    }
    const char *name = oh.error < 0 ? strerrorname_np(-oh.error) : NULL;
    snprintf(buf, sizeof(buf), "%s", name ? name : "BAD-ERROR");
    return buf;
}

static const char *report(const char *attack, long n, const char *extra)
{
    const char *a = answer(n, NULL);
    printf("FUSE %s %s%s%s\n", attack, a, extra ? " " : "", extra ? extra : "");
    fflush(stdout);
    attacks++;
    return a;
}

/* A request with the usual room for its reply. */
static long call(unsigned q, uint32_t op, uint64_t nodeid, const void *arg, uint32_t arglen)
{
    return send(q, build(op, nodeid, arg, arglen), 4096);
}

/* LOOKUP @name under @parent: the nodeid (0 on failure) and the answer. */
static uint64_t lookup(uint64_t parent, const char *name, const char **ans, uint32_t *mode)
{
    long n = call(REQUEST, FUSE_LOOKUP, parent, name, (uint32_t)strlen(name) + 1);
    size_t len;
    *ans = answer(n, &len);
    if (strcmp(*ans, "OK") || len < sizeof(struct fuse_entry_out))
        return 0;
    struct fuse_entry_out e;
    memcpy(&e, OUTBUF + sizeof(struct fuse_out_header), sizeof(e));
    if (mode)
        *mode = e.attr.mode;
    return e.nodeid;
}

static void attack_lookup(const char *attack, uint64_t parent, const char *name)
{
    report(attack, call(REQUEST, FUSE_LOOKUP, parent, name, (uint32_t)strlen(name) + 1), NULL);
}

/* LOOKUP @name (printing it as @attack, with the file type), then OPEN it. */
static uint64_t lookup_open(const char *attack, const char *name, uint32_t flags,
                            const char *open_attack)
{
    const char *a;
    uint32_t mode = 0;
    uint64_t id = lookup(FUSE_ROOT_ID, name, &a, &mode);
    char extra[32];
    snprintf(extra, sizeof(extra), "type=0%o", mode & S_IFMT);
    printf("FUSE %s %s %s\n", attack, a, extra);
    attacks++;
    if (id && open_attack) {
        struct fuse_open_in o = {.flags = flags};
        report(open_attack, call(REQUEST, FUSE_OPEN, id, &o, sizeof(o)), NULL);
    }
    return id;
}

static void names(void)
{
    attack_lookup("lookup-slash", FUSE_ROOT_ID, "a/b");
    attack_lookup("lookup-dotdot", FUSE_ROOT_ID, "..");
    attack_lookup("lookup-dot", FUSE_ROOT_ID, ".");
    attack_lookup("lookup-empty", FUSE_ROOT_ID, "");
    attack_lookup("lookup-path-out", FUSE_ROOT_ID, "../share-outside/secret");
    attack_lookup("lookup-absolute", FUSE_ROOT_ID, "/etc");
    char longname[300];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    attack_lookup("lookup-too-long", FUSE_ROOT_ID, longname);
    /* A name without its NUL: the request ends mid-name. */
    report("lookup-unterminated", call(REQUEST, FUSE_LOOKUP, FUSE_ROOT_ID, "plain", 5), NULL);
}

static void escapes(void)
{
    uint64_t esc = lookup_open("lookup-escape-symlink", "escape", O_RDONLY, "open-escape-symlink");
    if (esc)
        attack_lookup("lookup-through-symlink", esc, "secret");
    uint64_t escdir = lookup_open("lookup-escdir-symlink", "escdir", 0, NULL);
    if (escdir)
        attack_lookup("lookup-through-dir-symlink", escdir, "secret");
}

static void special_files(void)
{
    lookup_open("lookup-fifo", "fifo", O_RDONLY, "open-fifo");
    lookup_open("lookup-devnode", "devnode", O_RDWR, "open-devnode");
    /* CREATE without O_EXCL of an existing fifo would open it. */
    struct {
        struct fuse_create_in c;
        char name[8];
    } cr = {{.flags = O_RDWR, .mode = S_IFREG | 0644}, "fifo"};
    report("create-over-fifo", call(REQUEST, FUSE_CREATE, FUSE_ROOT_ID, &cr, sizeof(cr)), NULL);
    struct {
        struct fuse_mknod_in m;
        char name[8];
    } mk = {{.mode = S_IFCHR | 0666, .rdev = (1 << 8) | 1 /* 1:1, /dev/mem */}, "mem"};
    report("mknod-chardev", call(REQUEST, FUSE_MKNOD, FUSE_ROOT_ID, &mk, sizeof(mk)), NULL);
    const char *a;
    uint64_t plain = lookup(FUSE_ROOT_ID, "plain", &a, NULL);
    struct {
        uint32_t size, flags; /* FUSE_COMPAT_SETXATTR_IN_SIZE */
        char name[24];
        char value[4];
    } sx = {4, 0, "security.capability", "xxxx"};
    report("setxattr-security", call(REQUEST, FUSE_SETXATTR, plain, &sx, sizeof(sx)), NULL);
    struct {
        struct fuse_rename2_in r;
        char names[16];
    } rn = {{.newdir = FUSE_ROOT_ID, .flags = 4 /* RENAME_WHITEOUT */}, "plain\0white"};
    report("rename-whiteout", call(REQUEST, FUSE_RENAME2, FUSE_ROOT_ID, &rn, sizeof(rn)), NULL);
}

/* LOOKUPs of f0..f<count-1> without FORGET, then FORGET one and look
 * again: the limit answers errors, and gives way. */
static void flood(unsigned count)
{
    unsigned ok = 0, enfile = 0, other = 0, first_fail = 0;
    uint64_t first = 0;
    char name[32], line[128];
    const char *a;
    for (unsigned i = 0; i < count; i++) {
        snprintf(name, sizeof(name), "f%u", i);
        uint64_t id = lookup(FUSE_ROOT_ID, name, &a, NULL);
        if (id) {
            ok++;
            first = first ? first : id;
        } else if (!strcmp(a, "ENFILE")) {
            enfile++;
            first_fail = first_fail ? first_fail : i;
        } else {
            other++;
        }
    }
    printf("FUSE flood lookups=%u ok=%u ENFILE=%u other=%u\n", count, ok, enfile, other);
    attacks++;
    /* The limit gives way when the guest forgets: on the hiprio queue, no reply. */
    struct fuse_forget_in fg = {.nlookup = 1};
    report("forget-one", send(HIPRIO, build(FUSE_FORGET, first, &fg, sizeof(fg)), 4096), NULL);
    snprintf(name, sizeof(name), "f%u", first_fail);
    lookup(FUSE_ROOT_ID, name, &a, NULL);
    snprintf(line, sizeof(line), "FUSE lookup-after-forget %s", a);
    printf("%s\n", line);
    attacks++;
}

static void malformed(void)
{
    struct fuse_getattr_in ga = {0};
    uint32_t n = build(FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga));
    ((struct fuse_in_header *)INBUF)->len = n + 100;
    report("len-larger", send(REQUEST, n, 4096), NULL);
    n = build(FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga));
    ((struct fuse_in_header *)INBUF)->len = n - 8;
    report("len-smaller", send(REQUEST, n, 4096), NULL);
    build(FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga));
    report("truncated-header", send(REQUEST, 20, 4096), NULL);
    report("reply-room-8", send(REQUEST, build(FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga)), 8),
           NULL);
    report("reply-room-no-entry", send(REQUEST, build(FUSE_LOOKUP, FUSE_ROOT_ID, "plain", 6),
                                       sizeof(struct fuse_out_header) + 8),
           NULL);
    report("unknown-opcode", call(REQUEST, 9999, FUSE_ROOT_ID, &ga, sizeof(ga)), NULL);
    report("opcode-zero", call(REQUEST, 0, FUSE_ROOT_ID, &ga, sizeof(ga)), NULL);
    report("getattr-unknown-node", call(REQUEST, FUSE_GETATTR, 0xdeadbeef, &ga, sizeof(ga)), NULL);
    struct fuse_read_in rd_in = {.fh = 12345, .size = 4096};
    report("read-bad-fh", call(REQUEST, FUSE_READ, FUSE_ROOT_ID, &rd_in, sizeof(rd_in)), NULL);
    struct {
        struct fuse_write_in w;
        char data[16];
    } wr_in = {{.fh = 1, .size = 4096}, "short"};
    report("write-size-mismatch", call(REQUEST, FUSE_WRITE, FUSE_ROOT_ID, &wr_in, sizeof(wr_in)),
           NULL);
    struct fuse_forget_in fg = {.nlookup = UINT64_MAX};
    report("forget-on-request-queue", call(REQUEST, FUSE_FORGET, 0xdeadbeef, &fg, sizeof(fg)),
           NULL);
    report("forget-root", send(HIPRIO, build(FUSE_FORGET, FUSE_ROOT_ID, &fg, sizeof(fg)), 4096),
           NULL);
    struct fuse_batch_forget_in bf = {.count = 1u << 30};
    report("batch-forget-overcount",
           send(HIPRIO, build(FUSE_BATCH_FORGET, 0, &bf, sizeof(bf)), 4096), NULL);
    struct fuse_interrupt_in in = {.unique = 1};
    report("interrupt", send(HIPRIO, build(FUSE_INTERRUPT, 0, &in, sizeof(in)), 4096), NULL);
    report("lookup-on-hiprio", send(HIPRIO, build(FUSE_LOOKUP, FUSE_ROOT_ID, "plain", 6), 4096),
           NULL);
    report("getattr-root-after-all", call(REQUEST, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga)),
           NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: fuse-attack TAG [FLOOD]\n");
        return 2;
    }
    unsigned count = argc == 3 ? (unsigned)strtoul(argv[2], NULL, 10) : 600;
    char plat[64];
    mem = dma_pages(8, phys);
    if (take_fs(argv[1], plat, sizeof(plat)) < 0) {
        printf("ATTACK-FAIL no virtio-fs device with tag %s\n", argv[1]);
        return 1;
    }
    start();
    struct fuse_getattr_in ga = {0};
    report("before-init", call(REQUEST, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga)), NULL);
    struct fuse_init_in init = {.major = FUSE_KERNEL_VERSION, .minor = 36,
                                .max_readahead = 65536};
    report("init", call(REQUEST, FUSE_INIT, 0, &init, sizeof(init)), NULL);
    report("second-init", call(REQUEST, FUSE_INIT, 0, &init, sizeof(init)), NULL);
    names();
    escapes();
    special_files();
    flood(count);
    malformed();
    mmio_give_back(plat);
    printf("FUSE-DONE %u attacks\n", attacks);
    return 0;
}
