/* test_mmds.c - the metadata service without a VM: the store (PUT, RFC 7396
 * PATCH, the size limit), the guest's HTTP requests (V1, V2 tokens, JSON
 * and IMDS answers, errors) and the network stack fed with frames (ARP,
 * a TCP connection carrying a request, RSTs, a SYN flood). */
#include "unit.h"

#include "host/mmds.h"
#include "host/mmds_net.h"

static const char DOC[] = "{\"latest\": {\"meta-data\": {\"reservation-id\": \"r-1\", \"ami-id\": "
                          "\"ami-1\", \"net\": {\"mac\": \"m\"}}, \"num\": 7}}";

/* ---- the store ----------------------------------------------------------- */

static void test_store(void **state)
{
    (void)state;
    struct mmds *m = mmds_create(100);
    assert_non_null(m);
    char *s = mmds_get(m);
    assert_string_equal(s, "{}");
    free(s);
    assert_int_equal(mmds_patch(m, "{}", 2), -ENODATA);
    assert_int_equal(mmds_put(m, "[1]", 3), -EINVAL);
    assert_int_equal(mmds_put(m, "{\"a\":1,\"a\":2}", 13), -EINVAL); /* duplicate keys */
    assert_int_equal(mmds_put(m, "{\"a\": {\"b\": 1, \"c\": 2}, \"d\": 3}", 31), 0);
    /* RFC 7396's rules: null removes, objects merge, anything else replaces. */
    const char *p = "{\"a\": {\"b\": null, \"e\": [1]}, \"d\": {\"f\": \"g\"}}";
    assert_int_equal(mmds_patch(m, p, strlen(p)), 0);
    s = mmds_get(m);
    assert_string_equal(s, "{\"a\":{\"c\":2,\"e\":[1]},\"d\":{\"f\":\"g\"}}");
    free(s);
    /* Over the limit (100 bytes serialized): refused, nothing changes. */
    char big[160];
    snprintf(big, sizeof(big), "{\"x\": \"%0100d\"}", 0);
    assert_int_equal(mmds_patch(m, big, strlen(big)), -EFBIG);
    assert_int_equal(mmds_put(m, big, strlen(big)), -EFBIG);
    s = mmds_get(m);
    assert_string_equal(s, "{\"a\":{\"c\":2,\"e\":[1]},\"d\":{\"f\":\"g\"}}");
    free(s);
    mmds_set_size_limit(m, 1000);
    assert_int_equal(mmds_put(m, big, strlen(big)), 0);
    mmds_destroy(m);
}

/* ---- HTTP ------------------------------------------------------------------ */

struct resp {
    int status;
    char text[1024];
    const char *body;
};

static int serve(struct mmds *m, const char *req, uint64_t now, struct resp *r)
{
    char *out = NULL;
    size_t len = 0;
    int done = mmds_http_serve(m, req, strlen(req), false, now, &out, &len);
    if (!done)
        return 0;
    assert_non_null(out);
    assert_true(len < sizeof(r->text));
    memcpy(r->text, out, len);
    r->text[len] = 0;
    free(out);
    assert_int_equal(sscanf(r->text, "HTTP/1.1 %d", &r->status), 1);
    const char *b = strstr(r->text, "\r\n\r\n");
    assert_non_null(b);
    r->body = b + 4;
    /* Content-Length says the body's length. */
    const char *cl = strstr(r->text, "Content-Length: ");
    assert_non_null(cl);
    assert_int_equal(strtoul(cl + 16, NULL, 10), strlen(r->body));
    return r->status;
}

static void test_http_v1(void **state)
{
    (void)state;
    struct mmds *m = mmds_create(0);
    struct resp r;
    assert_int_equal(serve(m, "GET /latest HTTP/1.1\r\n\r\n", 0, &r), 404); /* nothing put */
    assert_int_equal(mmds_put(m, DOC, strlen(DOC)), 0);
    assert_int_equal(serve(m, "GET /latest/meta-data HTTP/1.1\r\nHost: x\r\n\r\n", 0, &r), 200);
    assert_string_equal(r.body, "ami-id\nnet/\nreservation-id"); /* sorted, dicts with '/' */
    assert_non_null(strstr(r.text, "Content-Type: text/plain"));
    assert_int_equal(serve(m, "GET /latest/meta-data/ami-id/ HTTP/1.0\r\n\r\n", 0, &r), 200);
    assert_string_equal(r.body, "ami-1");
    assert_int_equal(serve(m, "GET / HTTP/1.1\r\n\r\n", 0, &r), 200);
    assert_string_equal(r.body, "latest/");
    assert_int_equal(serve(m, "GET /latest/meta-data HTTP/1.1\r\naccept: application/json\r\n\r\n",
                           0, &r),
                     200);
    assert_string_equal(r.body, "{\"ami-id\":\"ami-1\",\"net\":{\"mac\":\"m\"},\"reservation-id\":\"r-1\"}");
    assert_non_null(strstr(r.text, "Content-Type: application/json"));
    assert_int_equal(serve(m, "GET /latest/num HTTP/1.1\r\nAccept: application/json\r\n\r\n", 0,
                           &r),
                     200);
    assert_string_equal(r.body, "7");
    assert_int_equal(serve(m, "GET /latest/num HTTP/1.1\r\n\r\n", 0, &r), 501);
    assert_int_equal(serve(m, "GET /latest/nope HTTP/1.1\r\n\r\n", 0, &r), 404);
    assert_int_equal(serve(m, "GET /latest/meta-data/ami-id/x HTTP/1.1\r\n\r\n", 0, &r), 404);
    assert_int_equal(serve(m, "POST /latest HTTP/1.1\r\n\r\n", 0, &r), 405);
    assert_non_null(strstr(r.text, "Allow: GET, PUT\r\n"));
    assert_int_equal(serve(m, "DELETE /latest HTTP/1.1\r\n\r\n", 0, &r), 405);
    assert_int_equal(serve(m, "GET latest HTTP/1.1\r\n\r\n", 0, &r), 400);
    assert_int_equal(serve(m, "GET /latest HTTP/2\r\n\r\n", 0, &r), 400);
    assert_int_equal(serve(m, "GET /latest HTTP/1.1\r\nbroken\r\n\r\n", 0, &r), 400);
    /* V1 takes a token but does not need one, even an invalid one. */
    assert_int_equal(serve(m, "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: "
                              "bad\r\n\r\n",
                           0, &r),
                     200);
    /* Incomplete: wait for more; unless the reader is full. */
    assert_int_equal(serve(m, "GET /latest HTTP/1.1\r\nHost:", 0, &r), 0);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(mmds_http_serve(m, "GET /", 5, true, 0, &out, &len), 1);
    assert_non_null(strstr(out, " 413 "));
    free(out);
    /* A body announced: wait for it. */
    assert_int_equal(serve(m, "PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", 0, &r), 0);
    assert_int_equal(serve(m, "PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 0, &r), 404);
    assert_int_equal(serve(m, "PUT /x HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 0, &r),
                     400);
    /* imds_compat: plain text whatever Accept says. */
    mmds_set_config(m, MMDS_V1, MMDS_IPV4_DEFAULT, true);
    assert_int_equal(serve(m, "GET /latest/meta-data HTTP/1.1\r\nAccept: application/json\r\n\r\n",
                           0, &r),
                     200);
    assert_string_equal(r.body, "ami-id\nnet/\nreservation-id");
    mmds_destroy(m);
}

static void test_http_v2(void **state)
{
    (void)state;
    struct mmds *m = mmds_create(0);
    struct resp r;
    assert_int_equal(mmds_put(m, DOC, strlen(DOC)), 0);
    mmds_set_config(m, MMDS_V2, MMDS_IPV4_DEFAULT, false);
    assert_int_equal(serve(m, "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n", 1000, &r), 401);
    assert_int_equal(serve(m, "PUT /latest/api/token HTTP/1.1\r\n\r\n", 1000, &r), 400);
    assert_int_equal(serve(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 0\r\n\r\n",
                           1000, &r),
                     400);
    assert_int_equal(serve(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: "
                              "21601\r\n\r\n",
                           1000, &r),
                     400);
    assert_int_equal(serve(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: "
                              "1x\r\n\r\n",
                           1000, &r),
                     400);
    assert_int_equal(serve(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: "
                              "60\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
                           1000, &r),
                     400);
    assert_int_equal(serve(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: "
                              "60\r\n\r\n",
                           1000, &r),
                     200);
    char tok[MMDS_TOKEN_LEN + 1];
    assert_int_equal(strlen(r.body), MMDS_TOKEN_LEN);
    memcpy(tok, r.body, sizeof(tok));
    /* A second token differs; both live. */
    assert_int_equal(serve(m, "PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: "
                              "21600\r\n\r\n",
                           1000, &r),
                     200);
    assert_string_not_equal(r.body, tok);
    char req[256];
    snprintf(req, sizeof(req), "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: %s\r\n\r\n",
             tok);
    assert_int_equal(serve(m, req, 1000, &r), 200);
    assert_string_equal(r.body, "ami-1");
    assert_int_equal(serve(m, req, 60999, &r), 200);
    assert_int_equal(serve(m, req, 61000, &r), 401); /* expired after 60 s */
    tok[0] = tok[0] == 'a' ? 'b' : 'a';
    snprintf(req, sizeof(req), "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: %s\r\n\r\n",
             tok);
    assert_int_equal(serve(m, req, 1000, &r), 401);
    /* Tokens asked for in a loop: the table stays bounded, new ones work. */
    for (int i = 0; i < 3 * MMDS_TOKENS_MAX; i++)
        assert_int_equal(serve(m, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: "
                                  "5\r\n\r\n",
                               2000, &r),
                         200);
    snprintf(req, sizeof(req), "GET /latest/meta-data/ami-id HTTP/1.1\r\nX-metadata-token: %.64s\r\n\r\n",
             r.body);
    assert_int_equal(serve(m, req, 2000, &r), 200);
    mmds_destroy(m);
}

/* ---- frames ---------------------------------------------------------------- */

static const uint8_t GUEST_MAC[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0x02};
#define GUEST_IP 0x0a000002u /* 10.0.0.2 */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* The ones' complement sum of @n bytes folded: 0xffff over a whole header
 * (or pseudo header + segment) whose checksum is right. */
static uint16_t sum16(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += get16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static size_t arp_request(uint8_t *f, uint32_t target)
{
    memset(f, 0xff, 6);
    memcpy(f + 6, GUEST_MAC, 6);
    put16(f + 12, 0x0806);
    uint8_t *a = f + 14;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6, a[5] = 4;
    put16(a + 6, 1);
    memcpy(a + 8, GUEST_MAC, 6);
    put32(a + 14, GUEST_IP);
    memset(a + 18, 0, 6);
    put32(a + 24, target);
    return 42;
}

/* A TCP segment from the guest's port @port to the service's port 80. */
static size_t tcp(uint8_t *f, uint32_t dst, uint16_t port, uint32_t seq, uint32_t ack,
                  uint8_t flags, const char *data)
{
    size_t dlen = data ? strlen(data) : 0, opt = (flags & 0x02) ? 4 : 0;
    memset(f, 0, 14 + 20 + 20 + opt);
    memcpy(f, (const uint8_t[]){0x06, 0x01, 0x23, 0x45, 0x67, 0x01}, 6);
    memcpy(f + 6, GUEST_MAC, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14, *t = ip + 20;
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(40 + opt + dlen));
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 6;
    put32(ip + 12, GUEST_IP);
    put32(ip + 16, dst);
    put16(t, port);
    put16(t + 2, 80);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = (uint8_t)((20 + opt) / 4 << 4);
    t[13] = flags;
    put16(t + 14, 65535);
    if (opt) {
        t[20] = 2, t[21] = 4;
        put16(t + 22, 1460);
    }
    memcpy(t + 20 + opt, data ? data : "", dlen);
    return 14 + 40 + opt + dlen;
}

struct seg {
    uint16_t port;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t wnd;
    const uint8_t *data;
    size_t dlen;
};

/* The next frame out of @s as a TCP segment, its checksums checked. */
static bool next_seg(struct mmds_net *s, uint8_t *f, struct seg *g)
{
    size_t len = mmds_net_output(s, f, MMDS_NET_FRAME_MAX);
    if (!len)
        return false;
    assert_memory_equal(f, GUEST_MAC, 6);
    assert_int_equal(get16(f + 12), 0x0800);
    const uint8_t *ip = f + 14, *t = ip + 20;
    assert_int_equal(sum16(0, ip, 20), 0xffff);
    assert_int_equal(get32(ip + 12), MMDS_IPV4_DEFAULT);
    assert_int_equal(get32(ip + 16), GUEST_IP);
    size_t tlen = get16(ip + 2) - 20u;
    assert_int_equal(14 + 20 + tlen, len);
    uint32_t pseudo = sum16(0, ip + 12, 8) + 6 + (uint32_t)tlen;
    assert_int_equal(sum16(pseudo, t, tlen), 0xffff);
    assert_int_equal(get16(t), 80);
    size_t doff = (size_t)(t[12] >> 4) * 4;
    *g = (struct seg){get16(t + 2), get32(t + 4), get32(t + 8), t[13], get16(t + 14),
                      t + doff, tlen - doff};
    return true;
}

static void feed(struct mmds_net *s, const uint8_t *f, size_t len)
{
    assert_true(mmds_net_wants(s, f, len));
    mmds_net_input(s, f, len);
}

static void test_frames(void **state)
{
    (void)state;
    struct mmds *m = mmds_create(0);
    assert_int_equal(mmds_put(m, DOC, strlen(DOC)), 0);
    struct mmds_net *s = mmds_net_create(m);
    uint8_t f[2048], o[MMDS_NET_FRAME_MAX];
    struct seg g;

    /* Not the service's: ARP for another address, IP to another. */
    size_t n = arp_request(f, 0x0a000001);
    assert_false(mmds_net_wants(s, f, n));
    n = tcp(f, 0x0a000001, 4000, 1, 0, 0x02, NULL);
    assert_false(mmds_net_wants(s, f, n));
    assert_false(mmds_net_wants(s, f, 20)); /* too short to tell */

    /* ARP: answered with the service's MAC. */
    n = arp_request(f, MMDS_IPV4_DEFAULT);
    feed(s, f, n);
    assert_true(mmds_net_pending(s));
    assert_int_equal(mmds_net_output(s, o, sizeof(o)), 42);
    assert_memory_equal(o, GUEST_MAC, 6);
    assert_int_equal(get16(o + 12), 0x0806);
    assert_int_equal(get16(o + 14 + 6), 2); /* a reply */
    assert_memory_equal(o + 14 + 8, o + 6, 6);
    assert_int_equal(get32(o + 14 + 14), MMDS_IPV4_DEFAULT);
    assert_memory_equal(o + 14 + 18, GUEST_MAC, 6);
    assert_int_equal(get32(o + 14 + 24), GUEST_IP);
    assert_false(mmds_net_pending(s));

    /* A connection: SYN, SYN|ACK, ACK + request, response, FIN. */
    n = tcp(f, MMDS_IPV4_DEFAULT, 4000, 1000, 0, 0x02, NULL);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    assert_int_equal(g.flags, 0x12);
    assert_int_equal(g.ack, 1001);
    assert_int_equal(g.port, 4000);
    uint32_t isn = g.seq;
    assert_false(mmds_net_pending(s));
    const char *rq = "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n";
    n = tcp(f, MMDS_IPV4_DEFAULT, 4000, 1001, isn + 1, 0x18, rq);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    assert_int_equal(g.flags & 0x10, 0x10);
    assert_int_equal(g.seq, isn + 1);
    assert_int_equal(g.ack, 1001 + strlen(rq));
    char body[512];
    snprintf(body, sizeof(body), "%.*s", (int)g.dlen, (const char *)g.data);
    assert_non_null(strstr(body, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(body, "\r\n\r\nami-1"));
    uint32_t end = isn + 1 + (uint32_t)g.dlen;
    assert_true(next_seg(s, o, &g));
    assert_int_equal(g.flags, 0x11); /* FIN|ACK */
    assert_int_equal(g.seq, end);
    assert_false(mmds_net_pending(s));
    /* A duplicate of the request (our ACK lost): the answer again, once. */
    n = tcp(f, MMDS_IPV4_DEFAULT, 4000, 1001, isn + 1, 0x18, rq);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    assert_int_equal(g.seq, isn + 1);
    assert_true(next_seg(s, o, &g));
    assert_int_equal(g.flags, 0x11);
    assert_false(mmds_net_pending(s));
    /* The guest acknowledges everything and closes: its FIN is acked and
     * the connection is gone (a later segment is answered RST). */
    uint32_t gseq = 1001 + (uint32_t)strlen(rq);
    n = tcp(f, MMDS_IPV4_DEFAULT, 4000, gseq, end + 1, 0x11, NULL);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    assert_int_equal(g.flags, 0x10);
    assert_int_equal(g.ack, gseq + 1);
    assert_false(mmds_net_pending(s));
    n = tcp(f, MMDS_IPV4_DEFAULT, 4000, gseq + 1, end + 1, 0x10, NULL);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    assert_int_equal(g.flags, 0x04); /* RST, seq = their ack */
    assert_int_equal(g.seq, end + 1);

    /* Not port 80, not TCP: swallowed, never answered. */
    n = tcp(f, MMDS_IPV4_DEFAULT, 4000, 1, 0, 0x02, NULL);
    put16(f + 14 + 20 + 2, 81);
    feed(s, f, n);
    assert_false(mmds_net_pending(s));

    /* An ACK whose cookie is wrong: RST. */
    n = tcp(f, MMDS_IPV4_DEFAULT, 4100, 500, 12345, 0x10, NULL);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    assert_int_equal(g.flags, 0x04);
    assert_int_equal(g.seq, 12345);

    /* A flood of SYNs from many ports: no state, at most MMDS_NET_CTRL
     * answers wait (the first ones), the rest are dropped. */
    for (unsigned p = 0; p < 1000; p++) {
        n = tcp(f, MMDS_IPV4_DEFAULT, (uint16_t)(10000 + p), p * 7, 0, 0x02, NULL);
        feed(s, f, n);
    }
    unsigned synacks = 0;
    while (next_seg(s, o, &g)) {
        assert_int_equal(g.flags, 0x12);
        assert_int_equal(g.port, 10000 + synacks);
        synacks++;
    }
    assert_int_equal(synacks, MMDS_NET_CTRL);
    /* Handshakes completed in a flood, each with half a request: the
     * connections stay MMDS_NET_CONNS (the oldest go) and a request made
     * after them is answered. */
    for (unsigned p = 0; p < 200; p++) {
        n = tcp(f, MMDS_IPV4_DEFAULT, (uint16_t)(20000 + p), 5000, 0, 0x02, NULL);
        feed(s, f, n);
        assert_true(next_seg(s, o, &g));
        n = tcp(f, MMDS_IPV4_DEFAULT, (uint16_t)(20000 + p), 5001, g.seq + 1, 0x18, "GET / HTTP/1.1\r\n");
        feed(s, f, n);
        assert_true(next_seg(s, o, &g)); /* the ACK of half a request */
        assert_int_equal(g.flags, 0x10);
        assert_false(mmds_net_pending(s));
    }
    n = tcp(f, MMDS_IPV4_DEFAULT, 20000, 5001 + 16, g.seq + 1, 0x18, "\r\n");
    feed(s, f, n); /* the oldest was evicted: RST */
    assert_true(next_seg(s, o, &g));
    assert_int_equal(g.flags & 0x04, 0x04);
    n = tcp(f, MMDS_IPV4_DEFAULT, 30000, 9, 0, 0x02, NULL);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    n = tcp(f, MMDS_IPV4_DEFAULT, 30000, 10, g.seq + 1, 0x18, rq);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    snprintf(body, sizeof(body), "%.*s", (int)g.dlen, (const char *)g.data);
    assert_non_null(strstr(body, "\r\n\r\nami-1"));
    while (next_seg(s, o, &g))
        ;
    /* ARP requests in a flood: the control queue is bounded. */
    for (unsigned i = 0; i < 1000; i++) {
        n = arp_request(f, MMDS_IPV4_DEFAULT);
        feed(s, f, n);
    }
    unsigned arps = 0;
    while (mmds_net_output(s, o, sizeof(o)))
        arps++;
    assert_int_equal(arps, MMDS_NET_CTRL);

    /* A request larger than MMDS_REQ_MAX: the window holds it back, the
     * part that came is answered 413. */
    n = tcp(f, MMDS_IPV4_DEFAULT, 5000, 100, 0, 0x02, NULL);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    isn = g.seq;
    assert_int_equal(g.wnd, MMDS_REQ_MAX);
    char huge[1500];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = 0;
    memcpy(huge, "GET /", 5);
    n = tcp(f, MMDS_IPV4_DEFAULT, 5000, 101, isn + 1, 0x10, huge);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g)); /* ACK: incomplete, window smaller */
    assert_int_equal(g.dlen, 0);
    assert_int_equal(g.wnd, MMDS_REQ_MAX - 1499);
    n = tcp(f, MMDS_IPV4_DEFAULT, 5000, 101 + 1499, isn + 1, 0x10, huge);
    feed(s, f, n);
    assert_true(next_seg(s, o, &g));
    snprintf(body, sizeof(body), "%.*s", (int)g.dlen, (const char *)g.data);
    assert_non_null(strstr(body, " 413 "));
    assert_int_equal(g.ack, 101 + MMDS_REQ_MAX);

    mmds_net_destroy(s);
    mmds_destroy(m);
}

int main(void)
{
    RUN(cmocka_unit_test(test_store), cmocka_unit_test(test_http_v1),
        cmocka_unit_test(test_http_v2), cmocka_unit_test(test_frames));
}
