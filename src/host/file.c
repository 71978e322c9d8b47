/* file.c - whole files mapped read-only, for the machines' loaders. */
#include "host/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

uint8_t *host_map_file(const char *what, const char *path, size_t *len, struct stat *stp,
                       char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s '%s': %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0) {
        snprintf(err, errlen, "%s '%s': empty or unreadable", what, path);
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s '%s': %s", what, path, strerror(errno));
        return NULL;
    }
    *len = (size_t)st.st_size;
    if (stp)
        *stp = st;
    return p;
}
