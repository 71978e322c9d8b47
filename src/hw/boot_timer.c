/* boot_timer.c - boot-time marker; see boot_timer.h. */
#include "hw/boot_timer.h"

#include "base/log.h"

#include <string.h>
#include <time.h>

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void boot_timer_init(struct boot_timer *t, bool enabled, uint64_t start_wall_us,
                     uint64_t start_cpu_us)
{
    t->enabled = enabled;
    t->start_wall_us = start_wall_us;
    t->start_cpu_us = start_cpu_us;
}

static void bt_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
    (void)opaque;
    (void)off;
    memset(data, 0, len);
}

static void bt_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
    const struct boot_timer *t = opaque;
    (void)len;
    if (!t->enabled || off != 0 || data[0] != BOOT_TIMER_MAGIC)
        return;
    uint64_t wall = clock_us(CLOCK_MONOTONIC) - t->start_wall_us;
    uint64_t cpu = clock_us(CLOCK_PROCESS_CPUTIME_ID) - t->start_cpu_us;
    /* Always shown, whatever the log level: the user asked for it. */
    log_force(LOG_INFO, "Guest-boot-time = %8llu us %4llu ms, %8llu CPU us %4llu CPU ms",
             (unsigned long long)wall, (unsigned long long)wall / 1000,
             (unsigned long long)cpu, (unsigned long long)cpu / 1000);
}

const struct bus_ops boot_timer_ops = {.read = bt_read, .write = bt_write};
