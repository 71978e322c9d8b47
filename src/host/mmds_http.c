/* mmds_http.c - the metadata service's HTTP side: one request from the guest
 * in, one response out, as Firecracker's MMDS user guide describes.
 *
 *   GET  /path              the data at path: JSON with "Accept:
 *                           application/json", else IMDS text; under V2
 *                           only with a live X-metadata-token (401)
 *   PUT  /latest/api/token  a V2 session token living
 *                           X-metadata-token-ttl-seconds (1..21600)
 *   anything else           405 (Allow: GET, PUT)
 *
 * The request is parsed in place with bounded loops (it is at most
 * MMDS_REQ_MAX bytes). Each response closes the connection. */
#include "host/mmds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct req {
    const char *method, *path, *version;
    size_t method_len, path_len, version_len;
    const char *accept, *token, *ttl;
    size_t accept_len, token_len, ttl_len;
    bool forwarded;   /* X-Forwarded-For present */
    size_t body_len;  /* Content-Length */
    bool bad;         /* malformed */
};

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 501: return "Not Implemented";
    default: return "Internal Server Error";
    }
}

/* The response: status line, headers, @body (@blen bytes). */
static void respond(int status, const char *ctype, const char *body, size_t blen, char **resp,
                    size_t *resp_len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason(status), status == 405 ? "Allow: GET, PUT\r\n" : "", ctype,
                     blen);
    *resp = malloc((size_t)n + blen);
    *resp_len = *resp ? (size_t)n + blen : 0;
    if (*resp) {
        memcpy(*resp, head, (size_t)n);
        memcpy(*resp + n, body, blen);
    }
}

static void respond_text(int status, const char *msg, char **resp, size_t *resp_len)
{
    respond(status, "text/plain", msg, strlen(msg), resp, resp_len);
}

static bool token_eq(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && !strncasecmp(s, lit, n);
}

/* One "Name: value" line (@n bytes, no CRLF) into @r. */
static void header(struct req *r, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s) {
        r->bad = true;
        return;
    }
    size_t nl = (size_t)(colon - s);
    const char *v = colon + 1, *end = s + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (token_eq(s, nl, "Accept")) {
        r->accept = v, r->accept_len = vl;
    } else if (token_eq(s, nl, "X-metadata-token") ||
               token_eq(s, nl, "X-aws-ec2-metadata-token")) {
        r->token = v, r->token_len = vl;
    } else if (token_eq(s, nl, "X-metadata-token-ttl-seconds") ||
               token_eq(s, nl, "X-aws-ec2-metadata-token-ttl-seconds")) {
        r->ttl = v, r->ttl_len = vl;
    } else if (token_eq(s, nl, "X-Forwarded-For")) {
        r->forwarded = true;
    } else if (token_eq(s, nl, "Content-Length")) {
        size_t len = 0;
        for (size_t i = 0; i < vl; i++) {
            if (v[i] < '0' || v[i] > '9' || len > MMDS_REQ_MAX) {
                r->bad = true;
                return;
            }
            len = len * 10 + (size_t)(v[i] - '0');
        }
        r->body_len = vl ? len : 0;
        r->bad |= !vl;
    }
}

/* The next space-separated word of @s[*i, n) (the request line). */
static const char *word(const char *s, size_t n, size_t *i, size_t *len)
{
    size_t b = *i;
    while (*i < n && s[*i] != ' ')
        (*i)++;
    *len = *i - b;
    if (*i < n)
        (*i)++;
    return s + b;
}

/* Parse @s: 0 when incomplete, else the request's length (head and body). */
static size_t parse(const char *s, size_t n, struct req *r)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < n; i++) {
        if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n') {
            end = s + i;
            break;
        }
    }
    if (!end)
        return 0;
    size_t head = (size_t)(end - s);
    const char *eol = memmem(s, head + 2, "\r\n", 2); /* the request line */
    size_t ll = (size_t)(eol - s), i = 0;
    r->method = word(s, ll, &i, &r->method_len);
    r->path = word(s, ll, &i, &r->path_len);
    r->version = word(s, ll, &i, &r->version_len);
    if (i < ll || !r->method_len || !r->path_len || r->path[0] != '/' ||
        !(token_eq(r->version, r->version_len, "HTTP/1.1") ||
          token_eq(r->version, r->version_len, "HTTP/1.0")))
        r->bad = true;
    for (const char *p = eol + 2; p < end;) {
        const char *q = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        header(r, p, (size_t)(q - p));
        p = q + 2;
    }
    if (head + 4 + r->body_len > n)
        return head + 4 + r->body_len > MMDS_REQ_MAX ? head + 4 + r->body_len : 0;
    return head + 4 + r->body_len;
}

static bool accepts_json(const struct req *r)
{
    return r->accept && memmem(r->accept, r->accept_len, "application/json", 16);
}

static void serve_get(struct mmds *m, const struct req *r, uint64_t now_ms, char **resp,
                      size_t *resp_len)
{
    if (mmds_version(m) == MMDS_V2) {
        if (!r->token) {
            respond_text(401, "No MMDS token provided. Use `X-metadata-token` header to specify "
                              "the session token.",
                         resp, resp_len);
            return;
        }
        if (!mmds_token_ok(m, r->token, r->token_len, now_ms)) {
            respond_text(401, "MMDS token not valid.", resp, resp_len);
            return;
        }
    }
    /* The query string is not part of the path. */
    const char *q = memchr(r->path, '?', r->path_len);
    size_t plen = q ? (size_t)(q - r->path) : r->path_len;
    struct mmds_render out = mmds_render(m, r->path, plen, accepts_json(r));
    if (out.status == 200) {
        respond(200, out.json ? "application/json" : "text/plain", out.body, strlen(out.body),
                resp, resp_len);
        free(out.body);
    } else if (out.status == 404) {
        respond_text(404, "Resource not found.", resp, resp_len);
    } else if (out.status == 501) {
        respond_text(501, "Cannot retrieve value. The value has an unsupported type.", resp,
                     resp_len);
    } else {
        respond_text(500, "Out of memory.", resp, resp_len);
    }
}

static void serve_put(struct mmds *m, const struct req *r, uint64_t now_ms, char **resp,
                      size_t *resp_len)
{
    if (!token_eq(r->path, r->path_len, "/latest/api/token")) {
        respond_text(404, "Resource not found.", resp, resp_len);
        return;
    }
    if (r->forwarded) {
        respond_text(400, "Invalid header. Reason: Unsupported header name. Key: "
                          "X-Forwarded-For",
                     resp, resp_len);
        return;
    }
    unsigned ttl = 0;
    bool ok = r->ttl && r->ttl_len && r->ttl_len <= 5;
    for (size_t i = 0; ok && i < r->ttl_len; i++) {
        ok = r->ttl[i] >= '0' && r->ttl[i] <= '9';
        ttl = ttl * 10 + (unsigned)(r->ttl[i] - '0');
    }
    if (!ok || ttl < 1 || ttl > MMDS_TOKEN_TTL_MAX) {
        respond_text(400, "Token time to live value must be between 1 and 21600 seconds.", resp,
                     resp_len);
        return;
    }
    char tok[MMDS_TOKEN_LEN + 1];
    if (mmds_token_new(m, ttl, now_ms, tok) < 0)
        respond_text(500, "Cannot generate a token.", resp, resp_len);
    else
        respond(200, "text/plain", tok, MMDS_TOKEN_LEN, resp, resp_len);
}

int mmds_http_serve(struct mmds *m, const char *req, size_t len, bool full, uint64_t now_ms,
                    char **resp, size_t *resp_len)
{
    struct req r = {0};
    size_t n = parse(req, len, &r);
    if (!n && !full)
        return 0;
    if (!n || n > len)
        respond_text(413, "Request too large.", resp, resp_len);
    else if (r.bad)
        respond_text(400, "Malformed request.", resp, resp_len);
    else if (token_eq(r.method, r.method_len, "GET"))
        serve_get(m, &r, now_ms, resp, resp_len);
    else if (token_eq(r.method, r.method_len, "PUT"))
        serve_put(m, &r, now_ms, resp, resp_len);
    else
        respond_text(405, "Not allowed HTTP method.", resp, resp_len);
    return 1;
}
