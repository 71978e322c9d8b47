/* console.c - the library's console output limits
 * (arcvm_set_console_limits()). */
#include "arcvm.h"

#include "lib/handle.h"

#include <errno.h>

int arcvm_set_console_limits(arcvm *h, const struct arcvm_token_bucket *bw, int drop_when_full)
{
    struct rate_limiter_config c = {0};
    if (bw)
        c.bandwidth = (struct rl_bucket_config){bw->size, bw->one_time_burst, bw->refill_time_ms};
    if (rate_limiter_config_check(&c) < 0)
        return lib_fail(h, -EINVAL,
                        "the console's rate limiter: a bucket with a size needs a "
                        "refill time of 1 ms or more");
    pthread_mutex_lock(&h->lock);
    int r = 0;
    if (h->vm) {
        r = lib_fail(h, -EBUSY, "the console's limits are set before the start");
    } else {
        h->cfg.console_rl = c;
        h->cfg.console_drop_when_full = drop_when_full != 0;
    }
    pthread_mutex_unlock(&h->lock);
    return r;
}
