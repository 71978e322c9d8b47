/* fuzz_mmds.c - libFuzzer target for the metadata service's guest side
 * (src/host/mmds_*.c): the frames a hostile guest sends to the service's
 * address (ARP, IPv4, TCP) and the HTTP requests they carry.
 *
 * Input: a mode byte, then
 *   mode & 1: one HTTP request for mmds_http_serve() (the rest of the input;
 *             mode & 2 selects V2, mode & 4 the reader being full);
 *   else:     frames, each a 2-byte big-endian length and its bytes, into
 *             one NIC's stack; after each, the stack's output is drained.
 *             SYN cookies are keyed with 0 (the fuzzer learns them from
 *             the comparison).
 * The service holds a small document and, under V2, a token the input may
 * guess.
 *
 * Properties: a complete HTTP response (status line, Content-Length equal to
 * the body) whenever one is given; every output frame fits its buffer and is
 * an ARP reply or an IPv4 TCP segment from port 80 of the service's
 * address; draining ends (bounded by the connections and control queue);
 * ASan/UBSan see every access.
 *
 * Run: FUZZ_TARGETS=fuzz_mmds tests/fuzz/run.sh
 */
#include "fuzz_check.h"

#include "host/mmds.h"
#include "host/mmds_net.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char DOC[] = "{\"latest\":{\"meta-data\":{\"ami-id\":\"a\",\"n\":1,\"d\":{\"x\":\"y\"}}}}";

static void check_response(const char *r, size_t len)
{
    CHECK(r && len > 12 && !memcmp(r, "HTTP/1.1 ", 9));
    const char *end = memmem(r, len, "\r\n\r\n", 4);
    CHECK(end);
    const char *cl = memmem(r, (size_t)(end - r), "Content-Length: ", 16);
    CHECK(cl);
    CHECK(strtoul(cl + 16, NULL, 10) == len - (size_t)(end + 4 - r));
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (!n)
        return 0;
    struct mmds *m = mmds_create(0);
    CHECK(m && mmds_put(m, DOC, strlen(DOC)) == 0);
    uint8_t mode = d[0];
    d++, n--;
    if (mode & 1) {
        mmds_set_config(m, (mode & 2) ? MMDS_V2 : MMDS_V1, MMDS_IPV4_DEFAULT, false);
        char *r = NULL;
        size_t rl = 0;
        size_t len = n < MMDS_REQ_MAX ? n : MMDS_REQ_MAX;
        char *req = malloc(len ? len : 1); /* exactly @len bytes: ASan sees overreads */
        memcpy(req, d, len);
        if (mmds_http_serve(m, req, len, mode & 4, 1000, &r, &rl))
            check_response(r, rl);
        else
            CHECK(!(mode & 4));
        free(r);
        free(req);
        mmds_destroy(m);
        return 0;
    }
    struct mmds_net *s = mmds_net_create(m);
    CHECK(s);
    mmds_net_set_key(s, 0); /* runs repeat */
    static uint8_t out[MMDS_NET_FRAME_MAX];
    while (n >= 2) {
        size_t fl = (size_t)(d[0] << 8 | d[1]);
        d += 2, n -= 2;
        fl = fl < n ? fl : n;
        uint8_t *f = malloc(fl ? fl : 1);
        memcpy(f, d, fl);
        if (mmds_net_wants(s, f, fl))
            mmds_net_input(s, f, fl);
        free(f);
        d += fl, n -= fl;
        unsigned k = 0;
        for (size_t ol; (ol = mmds_net_output(s, out, sizeof(out))); k++) {
            CHECK(ol <= sizeof(out) && ol >= 42);
            CHECK(k < 100000);
            uint16_t type = (uint16_t)(out[12] << 8 | out[13]);
            CHECK(type == 0x0806 || (type == 0x0800 && out[14 + 9] == 6 && out[34] == 0 &&
                                     out[35] == 80));
        }
        CHECK(!mmds_net_pending(s));
    }
    mmds_net_destroy(s);
    mmds_destroy(m);
    return 0;
}
