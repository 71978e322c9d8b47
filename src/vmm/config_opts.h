/* config_opts.h - the option lists of the CLI's device specs
 * ("PATH,ro,id=x"), shared by the parsers in config*.c. */
#ifndef ARCVM_VMM_CONFIG_OPTS_H
#define ARCVM_VMM_CONFIG_OPTS_H

#include <stdbool.h>
#include <stddef.h>

/* Split @s at commas into options; calls @fn(ctx, opt, len) for each and
 * stops at the first negative return, which it returns. */
typedef int (*config_opt_fn)(void *ctx, const char *opt, size_t len, char *err, size_t errlen);
int config_each_opt(const char *s, config_opt_fn fn, void *ctx, char *err, size_t errlen);
/* @opt (@len bytes) is exactly @name. */
bool config_opt_is(const char *opt, size_t len, const char *name);
/* "name=value": the value's start and length, or NULL (also when empty). */
const char *config_opt_value(const char *opt, size_t len, const char *name, size_t *vlen);

#endif
