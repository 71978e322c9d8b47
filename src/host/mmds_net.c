/* mmds_net.c - the metadata service's ARP/IPv4/TCP stack for one NIC. See
 * mmds_net.h.
 *
 * TCP, server side only, one request and one response per connection:
 *   SYN              -> answered SYN|ACK with a SYN cookie as our ISN, and
 *                       nothing kept (a SYN flood holds no state: no
 *                       half-open connection evicts another, and none
 *                       waits for its SYN to be retried)
 *   ACK of a cookie  -> a connection, OPEN; request bytes taken in order
 *                       into req[]
 *   request complete -> the response (mmds_http_serve()), sent within the
 *                       guest's window, then our FIN
 *   both FINs acked  -> freed (a lone ACK of the guest's FIN is queued)
 * Our sequence space is counted from isn: offset 0 is the SYN, 1..len the
 * response, len + 1 the FIN. There is no retransmission timer: frames are
 * only made when the guest has a buffer for them, so arcvm loses none; if
 * the guest drops one, its duplicate ACK or retransmission makes us resend
 * from the first unacknowledged byte (go-back-N). Checksums of the guest's
 * segments are not verified: they come from guest memory, not a wire, and
 * with checksum offload they are partial.
 */
#include "host/mmds_net.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define IP_HLEN 20
#define TCP_HLEN 20
#define IPPROTO_TCP_ 6
#define HTTP_PORT 80
/* The MSS the guest may send us without saying otherwise (RFC 9293 3.7.1). */
#define TCP_MSS_DEFAULT 536
#define TCP_MSS_MAX (1500 - IP_HLEN - TCP_HLEN)

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

/* The service's own MAC address: fixed, locally administered, unicast. */
static const uint8_t MMDS_MAC[6] = {0x06, 0x01, 0x23, 0x45, 0x67, 0x01};

enum cstate { C_FREE, C_OPEN };

/* The MSS values a SYN cookie can carry in its low 2 bits. */
static const uint16_t cookie_mss[4] = {536, 1220, 1440, 1460};

struct conn {
    enum cstate state;
    uint8_t mac[6];
    uint32_t ip; /* the guest's, host order */
    uint16_t port;
    uint16_t mss;
    uint32_t isn;     /* our initial sequence number */
    uint32_t rcv_nxt; /* the guest's next sequence number */
    uint32_t una, nxt; /* offsets from isn: acknowledged, sent */
    uint32_t wnd;     /* the guest's receive window */
    bool need_ack, fin_in, answered;
    bool resent;      /* went back to una once: not again until it moves */
    unsigned dupacks; /* duplicate ACKs in a row */
    uint64_t stamp; /* last use, for eviction */
    size_t req_len;
    char req[MMDS_REQ_MAX];
    char *resp;
    size_t resp_len;
};

struct ctrl {
    bool arp;
    uint8_t mac[6];
    uint32_t ip;
    uint16_t port;
    uint32_t seq, ack;
    uint8_t flags;
};

struct mmds_net {
    struct mmds *m;
    uint32_t ip; /* the service's, host order */
    uint64_t key; /* the SYN cookies' */
    uint16_t ip_id;
    uint64_t clock;   /* counts segments: the eviction order */
    unsigned rr;      /* the connection served first next time */
    unsigned ctrl_first, ctrl_n;
    struct ctrl ctrl[MMDS_NET_CTRL];
    struct conn conns[MMDS_NET_CONNS];
};

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
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

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

struct mmds_net *mmds_net_create(struct mmds *m)
{
    struct mmds_net *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->m = m;
    s->ip = mmds_ipv4(m);
    if (getrandom(&s->key, sizeof(s->key), 0) != (ssize_t)sizeof(s->key))
        s->key = now_ms() * 0x9e3779b97f4a7c15ull;
    return s;
}

void mmds_net_set_key(struct mmds_net *s, uint64_t key)
{
    s->key = key;
}

/* The SYN cookie of a SYN from @ip:@port with sequence number @seq: our
 * ISN for that connection but its low 2 bits (the MSS's index). A keyed
 * mix (splitmix64's finalizer), not a MAC: a guest that forges one gains
 * only the connection a SYN would have given it. */
static uint32_t cookie(const struct mmds_net *s, uint32_t ip, uint16_t port, uint32_t seq)
{
    uint64_t x = s->key ^ ((uint64_t)ip << 32 | (uint64_t)port << 16) ^
                 (uint64_t)seq * 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)(x ^ (x >> 31)) & ~3u;
}

static void conn_free(struct conn *c)
{
    free(c->resp);
    c->resp = NULL;
    c->state = C_FREE;
}

void mmds_net_destroy(struct mmds_net *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < MMDS_NET_CONNS; i++)
        conn_free(&s->conns[i]);
    free(s);
}

bool mmds_net_wants(const struct mmds_net *s, const uint8_t *f, size_t len)
{
    if (len < ETH_HLEN + IP_HLEN)
        return false;
    uint16_t type = get16(f + 12);
    if (type == ETH_P_ARP) /* the target protocol address */
        return len >= ETH_HLEN + 28 && get32(f + ETH_HLEN + 24) == s->ip;
    if (type == ETH_P_IP)
        return (f[ETH_HLEN] >> 4) == 4 && get32(f + ETH_HLEN + 16) == s->ip;
    return false;
}

/* ---- control replies ----------------------------------------------------- */

static void ctrl_push(struct mmds_net *s, const struct ctrl *c)
{
    if (s->ctrl_n == MMDS_NET_CTRL)
        return; /* full: dropped, the guest asks again */
    s->ctrl[(s->ctrl_first + s->ctrl_n++) % MMDS_NET_CTRL] = *c;
}

static void arp_input(struct mmds_net *s, const uint8_t *f, size_t len)
{
    const uint8_t *a = f + ETH_HLEN;
    /* Ethernet/IPv4 requests only (RFC 826: htype 1, ptype 0x0800, op 1). */
    if (len < ETH_HLEN + 28 || get16(a) != 1 || get16(a + 2) != ETH_P_IP || a[4] != 6 ||
        a[5] != 4 || get16(a + 6) != 1)
        return;
    struct ctrl c = {.arp = true, .ip = get32(a + 14)};
    memcpy(c.mac, a + 8, 6);
    ctrl_push(s, &c);
}

/* ---- TCP input ------------------------------------------------------------ */

static struct conn *conn_find(struct mmds_net *s, uint32_t ip, uint16_t port)
{
    for (unsigned i = 0; i < MMDS_NET_CONNS; i++) {
        struct conn *c = &s->conns[i];
        if (c->state != C_FREE && c->ip == ip && c->port == port)
            return c;
    }
    return NULL;
}

/* A free connection, or the least recently used one, taken over. */
static struct conn *conn_new(struct mmds_net *s)
{
    struct conn *v = &s->conns[0];
    for (unsigned i = 0; i < MMDS_NET_CONNS; i++) {
        struct conn *c = &s->conns[i];
        if (c->state == C_FREE) {
            v = c;
            break;
        }
        if (c->stamp < v->stamp)
            v = c;
    }
    conn_free(v);
    return v;
}

/* The MSS option of a SYN's options @o (@n bytes), or the default. */
static uint16_t syn_mss(const uint8_t *o, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (o[i] == 0) /* end of options */
            break;
        if (o[i] == 1) { /* no-op */
            i++;
            continue;
        }
        if (i + 1 >= n || o[i + 1] < 2 || i + o[i + 1] > n)
            break;
        if (o[i] == 2 && o[i + 1] == 4) {
            uint16_t mss = get16(o + i + 2);
            return mss < 64 ? 64 : mss > TCP_MSS_MAX ? TCP_MSS_MAX : mss;
        }
        i += o[i + 1];
    }
    return TCP_MSS_DEFAULT;
}

/* A RST for a segment that belongs to no connection (RFC 9293 3.10.7.1). */
static void reset(struct mmds_net *s, const uint8_t *mac, uint32_t ip, uint16_t port, uint8_t fl,
                  uint32_t seq, uint32_t ack, size_t dlen)
{
    struct ctrl c = {.ip = ip, .port = port};
    memcpy(c.mac, mac, 6);
    if (fl & TH_ACK) {
        c.seq = ack;
        c.flags = TH_RST;
    } else {
        c.ack = seq + (uint32_t)dlen + !!(fl & TH_SYN) + !!(fl & TH_FIN);
        c.flags = TH_RST | TH_ACK;
    }
    ctrl_push(s, &c);
}

/* Send again from the first unacknowledged byte, once per such byte: a
 * guest answering each resent segment with another duplicate cannot make
 * it loop. */
static void go_back(struct conn *c)
{
    if (!c->resent && c->una >= 1) {
        c->nxt = c->una;
        c->resent = true;
    }
}

/* The guest's request, once complete, answered. */
static void conn_answer(struct mmds_net *s, struct conn *c)
{
    if (c->answered || (!c->req_len && !c->fin_in))
        return;
    bool full = c->req_len == sizeof(c->req) || c->fin_in;
    if (!c->req_len) {
        c->answered = true; /* closed without asking: just close */
        return;
    }
    if (mmds_http_serve(s->m, c->req, c->req_len, full, now_ms(), &c->resp, &c->resp_len))
        c->answered = true; /* a NULL response (no memory): an empty one, then FIN */
}

static void tcp_input(struct mmds_net *s, const uint8_t *f, const uint8_t *ip, size_t ip_len,
                      size_t ihl)
{
    if (ip_len < ihl + TCP_HLEN)
        return;
    const uint8_t *t = ip + ihl;
    size_t doff = (size_t)(t[12] >> 4) * 4;
    if (doff < TCP_HLEN || ihl + doff > ip_len || get16(t + 2) != HTTP_PORT)
        return;
    uint32_t gip = get32(ip + 12), seq = get32(t + 4), ack = get32(t + 8);
    uint16_t port = get16(t);
    uint8_t fl = t[13];
    const uint8_t *data = t + doff;
    size_t dlen = ip_len - ihl - doff;
    struct conn *c = conn_find(s, gip, port);
    if (fl & TH_RST) {
        if (c)
            conn_free(c);
        return;
    }
    if ((fl & (TH_SYN | TH_ACK)) == TH_SYN) {
        if (c)
            conn_free(c); /* the port starts over */
        uint16_t mss = syn_mss(t + TCP_HLEN, doff - TCP_HLEN);
        unsigned mi = 3;
        while (mi && cookie_mss[mi] > mss)
            mi--;
        struct ctrl k = {.ip = gip, .port = port, .seq = cookie(s, gip, port, seq) | mi,
                         .ack = seq + 1, .flags = TH_SYN | TH_ACK};
        memcpy(k.mac, f + 6, 6);
        ctrl_push(s, &k);
        return;
    }
    if (!c && (fl & (TH_SYN | TH_ACK)) == TH_ACK &&
        ((ack - 1) & ~3u) == cookie(s, gip, port, seq - 1)) {
        /* The ACK of a cookie: the connection starts here. */
        c = conn_new(s);
        *c = (struct conn){.state = C_OPEN, .ip = gip, .port = port, .rcv_nxt = seq,
                           .isn = ack - 1, .una = 1, .nxt = 1, .mss = cookie_mss[(ack - 1) & 3]};
        memcpy(c->mac, f + 6, 6);
    }
    if (!c || (fl & TH_SYN)) {
        reset(s, f + 6, gip, port, fl, seq, ack, dlen);
        if (c)
            conn_free(c);
        return;
    }
    c->stamp = ++s->clock;
    if (!(fl & TH_ACK))
        return; /* every segment after the SYN carries an ACK */
    uint32_t a = ack - c->isn;
    uint32_t end = c->answered ? (uint32_t)c->resp_len + 2 : 1;
    if (a > c->una && a <= c->nxt) {
        c->una = a;
        c->resent = false;
        c->dupacks = 0;
    } else if (a == c->una && c->una < c->nxt && !dlen && !(fl & TH_FIN)) {
        /* The third duplicate ACK (RFC 5681's fast retransmit): resend
         * what it did not get, once per acknowledged point. */
        if (++c->dupacks >= 3)
            go_back(c);
    } else if (a > c->nxt && a <= end) {
        c->need_ack = true; /* acknowledges what we never sent */
    }
    c->wnd = get16(t + 14);
    if (dlen) {
        c->need_ack = true;
        if (seq == c->rcv_nxt && !c->answered) {
            size_t take = sizeof(c->req) - c->req_len;
            take = dlen < take ? dlen : take;
            memcpy(c->req + c->req_len, data, take);
            c->req_len += take;
            c->rcv_nxt += (uint32_t)take;
            dlen -= take;
        } else if ((int32_t)(seq - c->rcv_nxt) < 0) {
            go_back(c); /* it resends: our answer may be lost too */
        }
    }
    if ((fl & TH_FIN) && seq + (uint32_t)dlen == c->rcv_nxt && !c->fin_in &&
        (!dlen || c->answered)) {
        c->rcv_nxt++;
        c->fin_in = true;
        c->need_ack = true;
    }
    conn_answer(s, c);
    if (c->answered && c->fin_in && c->una == (uint32_t)c->resp_len + 2) {
        /* Both sides closed: only the ACK of the guest's FIN is left. */
        if (c->need_ack) {
            struct ctrl k = {.ip = c->ip, .port = c->port, .seq = c->isn + c->nxt,
                             .ack = c->rcv_nxt, .flags = TH_ACK};
            memcpy(k.mac, c->mac, 6);
            ctrl_push(s, &k);
        }
        conn_free(c);
    }
}

void mmds_net_input(struct mmds_net *s, const uint8_t *f, size_t len)
{
    if (len < ETH_HLEN + IP_HLEN)
        return;
    if (get16(f + 12) == ETH_P_ARP) {
        arp_input(s, f, len);
        return;
    }
    const uint8_t *ip = f + ETH_HLEN;
    size_t ihl = (size_t)(ip[0] & 0xf) * 4;
    size_t tot = get16(ip + 2);
    /* Whole, unfragmented IPv4 TCP only (fragments: DF is what Linux sets). */
    if (ihl < IP_HLEN || tot < ihl || tot > len - ETH_HLEN || (get16(ip + 6) & 0x3fff) ||
        ip[9] != IPPROTO_TCP_)
        return;
    tcp_input(s, f, ip, tot, ihl);
}

/* ---- output ----------------------------------------------------------------- */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += get16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void eth_header(uint8_t *b, const uint8_t *dst, uint16_t type)
{
    memcpy(b, dst, 6);
    memcpy(b + 6, MMDS_MAC, 6);
    put16(b + 12, type);
}

static size_t arp_reply(const struct mmds_net *s, const struct ctrl *c, uint8_t *b)
{
    eth_header(b, c->mac, ETH_P_ARP);
    uint8_t *a = b + ETH_HLEN;
    put16(a, 1);
    put16(a + 2, ETH_P_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, 2); /* reply */
    memcpy(a + 8, MMDS_MAC, 6);
    put32(a + 14, s->ip);
    memcpy(a + 18, c->mac, 6);
    put32(a + 24, c->ip);
    return ETH_HLEN + 28;
}

/* A TCP segment to @mac/@ip:@port with @dlen bytes of @data. */
static size_t segment(struct mmds_net *s, uint8_t *b, const uint8_t *mac, uint32_t ip,
                      uint16_t port, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t wnd,
                      const char *data, size_t dlen)
{
    size_t opt = (flags & TH_SYN) ? 4 : 0;
    size_t tlen = TCP_HLEN + opt + dlen;
    eth_header(b, mac, ETH_P_IP);
    uint8_t *h = b + ETH_HLEN, *t = h + IP_HLEN;
    memset(h, 0, IP_HLEN + TCP_HLEN + opt);
    h[0] = 0x45;
    put16(h + 2, (uint16_t)(IP_HLEN + tlen));
    put16(h + 4, s->ip_id++);
    put16(h + 6, 0x4000); /* DF */
    h[8] = 64;            /* TTL */
    h[9] = IPPROTO_TCP_;
    put32(h + 12, s->ip);
    put32(h + 16, ip);
    put16(h + 10, csum_fold(csum_add(0, h, IP_HLEN)));
    put16(t, HTTP_PORT);
    put16(t + 2, port);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = (uint8_t)(((TCP_HLEN + opt) / 4) << 4);
    t[13] = flags;
    put16(t + 14, wnd);
    if (opt) { /* MSS */
        t[20] = 2;
        t[21] = 4;
        put16(t + 22, TCP_MSS_MAX);
    }
    if (dlen)
        memcpy(t + TCP_HLEN + opt, data, dlen);
    /* The pseudo header (RFC 9293 3.1), then the segment. */
    uint32_t sum = csum_add(0, h + 12, 8) + IPPROTO_TCP_ + (uint32_t)tlen;
    put16(t + 16, csum_fold(csum_add(sum, t, tlen)));
    return ETH_HLEN + IP_HLEN + tlen;
}

enum due { DUE_NONE, DUE_DATA, DUE_FIN, DUE_ACK };

static enum due conn_due(const struct conn *c)
{
    if (c->state == C_FREE)
        return DUE_NONE;
    if (c->answered) {
        uint32_t data_end = (uint32_t)c->resp_len + 1;
        if (c->nxt < data_end && c->nxt - c->una < c->wnd)
            return DUE_DATA;
        if (c->nxt == data_end)
            return DUE_FIN;
    }
    return c->need_ack ? DUE_ACK : DUE_NONE;
}

bool mmds_net_pending(struct mmds_net *s)
{
    if (s->ctrl_n)
        return true;
    for (unsigned i = 0; i < MMDS_NET_CONNS; i++)
        if (conn_due(&s->conns[i]) != DUE_NONE)
            return true;
    return false;
}

size_t mmds_net_output(struct mmds_net *s, uint8_t *b, size_t cap)
{
    const size_t hdrs = ETH_HLEN + IP_HLEN + TCP_HLEN + 4;
    if (cap < hdrs + 1)
        return 0;
    if (s->ctrl_n) {
        struct ctrl *c = &s->ctrl[s->ctrl_first];
        s->ctrl_first = (s->ctrl_first + 1) % MMDS_NET_CTRL;
        s->ctrl_n--;
        if (c->arp)
            return arp_reply(s, c, b);
        /* A SYN|ACK offers the request's room as its window. */
        return segment(s, b, c->mac, c->ip, c->port, c->seq, c->ack, c->flags,
                       (c->flags & TH_SYN) ? MMDS_REQ_MAX : 0, NULL, 0);
    }
    for (unsigned k = 0; k < MMDS_NET_CONNS; k++) {
        struct conn *c = &s->conns[(s->rr + k) % MMDS_NET_CONNS];
        enum due d = conn_due(c);
        if (d == DUE_NONE)
            continue;
        s->rr = (s->rr + k + 1) % MMDS_NET_CONNS;
        uint16_t wnd = c->answered ? 0 : (uint16_t)(sizeof(c->req) - c->req_len);
        uint32_t seq = c->isn + c->nxt;
        uint8_t fl = TH_ACK;
        const char *data = NULL;
        size_t dlen = 0;
        if (d == DUE_DATA) {
            uint32_t left = (uint32_t)c->resp_len + 1 - c->nxt;
            uint32_t room = c->wnd - (c->nxt - c->una);
            dlen = left < room ? left : room;
            dlen = dlen < c->mss ? dlen : c->mss;
            dlen = dlen < cap - hdrs ? dlen : cap - hdrs;
            data = c->resp + (c->nxt - 1);
            fl |= TH_PSH;
        } else if (d == DUE_FIN) {
            fl |= TH_FIN;
        }
        c->nxt += (uint32_t)dlen + (d == DUE_FIN);
        c->need_ack = false;
        return segment(s, b, c->mac, c->ip, c->port, seq, c->rcv_nxt, fl, wnd, data, dlen);
    }
    return 0;
}
