/* api_client.h - a client of arcvm's own API socket, for the command line:
 * one HTTP/1.0 request over the Unix socket.
 */
#ifndef ARCVM_API_CLIENT_H
#define ARCVM_API_CLIENT_H

#include <stddef.h>
#include <stdio.h>

/* GET @path from the API server listening on @sock. Returns the HTTP status
 * with the body in *@body (malloc'd, NUL-terminated; free it), or -errno
 * with one sentence in @err (no server, timeout, ...). */
int api_client_get(const char *sock, const char *path, char **body, char *err, size_t errlen);

/* `arcvm vcpus --api-sock PATH`: GET /vcpus and print one line per vCPU to
 * @out, as arcvm_vcpu_info_format() does. 0, or -errno with @err set. */
int api_client_print_vcpus(const char *sock, FILE *out, char *err, size_t errlen);

#endif
