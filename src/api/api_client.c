/* api_client.c - one HTTP request to an arcvm API socket; see api_client.h. */
#include "api/api_client.h"

#include "arcvm.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A vCPU report answers within half a second; anything slower is a server
 * that is stuck, and the user should hear so. */
#define CLIENT_TIMEOUT_MS 5000
/* Replies of arcvm's API are small; a larger one is not arcvm talking. */
#define CLIENT_MAX_REPLY (1u << 20)

/* One HTTP/1.0 request, written by hand: libevent 2.1's HTTP client cannot
 * use a Unix socket (it always connects by host name itself), and the peer
 * is arcvm's own evhttp server, which closes the connection after its one
 * reply, so reading to EOF frames the response. */
int api_client_get(const char *sock, const char *path, char **body, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path '%s' is too long", sock);
        return -ENAMETOOLONG;
    }
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "cannot connect to %s: %s (is arcvm running with --api-sock %s?)",
                 sock, strerror(e), sock);
        return -e;
    }
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    char *buf = NULL;
    size_t len = 0;
    int r = 0;
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        r = -EIO;
        snprintf(err, errlen, "cannot send the request to %s", sock);
        goto out;
    }
    if (!(buf = malloc(CLIENT_MAX_REPLY + 1))) {
        r = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, CLIENT_TIMEOUT_MS);
        if (pr == 0) {
            r = -ETIMEDOUT;
            snprintf(err, errlen, "%s did not answer within %d s", sock, CLIENT_TIMEOUT_MS / 1000);
            goto out;
        }
        ssize_t got = pr < 0 ? -1 : read(fd, buf + len, CLIENT_MAX_REPLY - len);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got < 0) {
            r = -errno;
            snprintf(err, errlen, "reading from %s: %s", sock, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len == CLIENT_MAX_REPLY) {
            r = -EPROTO;
            snprintf(err, errlen, "%s answered more than %u bytes: not arcvm's API", sock,
                     CLIENT_MAX_REPLY);
            goto out;
        }
    }
    buf[len] = 0;
    int status = 0;
    char *hdr_end = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*[01] %d", &status) != 1 || status < 100 || status > 599 ||
        !hdr_end) {
        r = -EPROTO;
        snprintf(err, errlen, "%s did not answer in HTTP", sock);
        goto out;
    }
    memmove(buf, hdr_end + 4, len - (size_t)(hdr_end + 4 - buf) + 1);
    *body = buf;
    buf = NULL;
    r = status;
out:
    free(buf);
    close(fd);
    return r;
}

static uint64_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : 0;
}

int api_client_print_vcpus(const char *sock, FILE *out, char *err, size_t errlen)
{
    char *body = NULL;
    int status = api_client_get(sock, "/vcpus", &body, err, errlen);
    if (status < 0)
        return status;
    json_error_t je;
    json_t *doc = json_loads(body ? body : "", 0, &je);
    json_t *arr = json_object_get(doc, "vcpus");
    int r = 0;
    if (status != 200 || !json_is_array(arr)) {
        const char *msg = json_string_value(json_object_get(doc, "fault_message"));
        snprintf(err, errlen, "%s answered %d: %s", sock, status,
                 msg ? msg : "not a vCPU report (is it arcvm?)");
        r = -EPROTO;
    }
    size_t i;
    json_t *o;
    json_array_foreach(r == 0 ? arr : NULL, i, o)
    {
        static const enum arcvm_vcpu_where places[] = {
            ARCVM_VCPU_NOT_STARTED, ARCVM_VCPU_IN_GUEST, ARCVM_VCPU_IN_VMM, ARCVM_VCPU_PARKED,
            ARCVM_VCPU_DONE};
        struct arcvm_vcpu_info v = {.id = (unsigned)num(o, "id"),
                                    .where_ms = num(o, "state_ms"),
                                    .answered = json_is_true(json_object_get(o, "answered")),
                                    .exits = num(o, "exits"),
                                    .kicks = num(o, "kicks"),
                                    .intr_exits = num(o, "interrupted_runs")};
        const char *state = json_string_value(json_object_get(o, "state"));
        for (size_t k = 0; state && k < sizeof(places) / sizeof(places[0]); k++)
            if (!strcmp(state, arcvm_vcpu_where_name(places[k])))
                v.where = places[k];
        const char *pc = json_string_value(json_object_get(o, "pc"));
        if (pc) {
            v.pc = strtoull(pc, NULL, 16);
            v.pc_valid = 1;
        }
        const char *le = json_string_value(json_object_get(o, "last_exit"));
        snprintf(v.last_exit, sizeof(v.last_exit), "%s", le ? le : "?");
        char line[256];
        arcvm_vcpu_info_format(&v, line, sizeof(line));
        fprintf(out, "%s\n", line);
    }
    json_decref(doc);
    free(body);
    return r;
}
