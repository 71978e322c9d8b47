/* file.h - whole files mapped read-only (kernels, initrds). */
#ifndef ARCVM_HOST_FILE_H
#define ARCVM_HOST_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* A read-only private mapping of the whole file @path (munmap() it, *@len
 * bytes); its stat in *@stp when not NULL. NULL with a sentence naming
 * @what ("kernel", "initrd") in @err when it cannot be opened or is empty. */
uint8_t *host_map_file(const char *what, const char *path, size_t *len, struct stat *stp,
                       char *err, size_t errlen);

#endif
