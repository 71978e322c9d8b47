/* i8042.c - keyboard controller emulation; see i8042.h.
 * Command numbers from the IBM PC/AT technical reference (8042 commands). */
#include "hw/i8042.h"

#include "base/irq.h"
#include "base/log.h"
#include "base/snap.h"

#include <errno.h>
#include <string.h>

#define STS_OBF 0x01     /* output buffer full: a byte waits at 0x60 */
#define STS_SYS 0x04     /* system flag: self-test passed */
#define STS_CMD 0x08     /* last write was a command */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited by the key lock */
#define CTR_KBD_INT 0x01 /* interrupt on keyboard output */
#define CTR_SYS 0x04
#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_SELF_TEST 0xaa
#define CMD_IFACE_TEST 0xab
#define CMD_READ_OUTP 0xd0
#define CMD_WRITE_OUTP 0xd1
#define CMD_PULSE_RESET 0xfe
#define KBD_ACK 0xfa

void i8042_init(struct i8042 *k, const struct hw_machine *m, struct irq_line *irq)
{
    memset(k, 0, sizeof(*k));
    pthread_mutex_init(&k->lock, NULL);
    k->machine = m;
    k->irq = irq;
    k->ctr = CTR_KBD_INT | CTR_SYS;
    k->outp = 0x01; /* bit 0: CPU not held in reset */
}

void i8042_release(struct i8042 *k)
{
    pthread_mutex_destroy(&k->lock);
}

/* Queue a reply byte; returns whether to raise IRQ 1. Lock held. */
static bool push(struct i8042 *k, uint8_t v)
{
    if (k->out_len == sizeof(k->out))
        return false; /* the guest is not reading: drop, never grow */
    k->out[k->out_len++] = v;
    return k->ctr & CTR_KBD_INT;
}

static void i8042_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
    struct i8042 *k = opaque;
    uint8_t v = 0;
    bool irq = false;
    pthread_mutex_lock(&k->lock);
    if (off == 0) {
        if (k->out_len) {
            v = k->out[0];
            memmove(k->out, k->out + 1, --k->out_len);
            /* The next byte moves into the output buffer and interrupts
             * again: Linux's handler takes one byte per interrupt. */
            irq = k->out_len && (k->ctr & CTR_KBD_INT);
        }
    } else if (off == 4) {
        v = STS_SYS | STS_UNLOCKED | (k->out_len ? STS_OBF : 0) | (k->pending_cmd ? STS_CMD : 0);
    }
    pthread_mutex_unlock(&k->lock);
    memset(data, 0, len);
    data[0] = v;
    if (irq)
        irq_line_pulse(k->irq);
}

static void i8042_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct i8042 *k = opaque;
    uint8_t v = data[0];
    bool irq = false, reset = false;
    (void)len;
    pthread_mutex_lock(&k->lock);
    if (off == 4) {
        k->pending_cmd = 0;
        switch (v) {
        case CMD_READ_CTR: irq = push(k, k->ctr); break;
        case CMD_WRITE_CTR:
        case CMD_WRITE_OUTP: k->pending_cmd = v; break;
        case CMD_READ_OUTP: irq = push(k, k->outp); break;
        case CMD_SELF_TEST: irq = push(k, 0x55); break; /* 0x55: passed */
        case CMD_IFACE_TEST: irq = push(k, 0x00); break; /* 0: no error */
        case CMD_PULSE_RESET: reset = true; break;
        default: break; /* enable/disable port and others: accepted */
        }
    } else if (off == 0) {
        if (k->pending_cmd == CMD_WRITE_CTR) {
            k->ctr = v;
        } else if (k->pending_cmd == CMD_WRITE_OUTP) {
            k->outp = v;
            reset = !(v & 0x01); /* clearing bit 0 asserts CPU reset */
        } else {
            irq = push(k, KBD_ACK); /* a keyboard command: acknowledge it */
        }
        k->pending_cmd = 0;
    }
    pthread_mutex_unlock(&k->lock);
    if (irq)
        irq_line_pulse(k->irq);
    if (reset) {
        log_debug("i8042: guest pulsed the reset line");
        hw_machine_request(k->machine, HW_REQ_RESET);
    }
}

const struct bus_ops i8042_ops = {.read = i8042_read, .write = i8042_write};

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
    /* Set 2 make codes: left Ctrl 0x14, left Alt 0x11, Delete 0xe0 0x71. */
    static const uint8_t keys[] = {0x14, 0x11, 0xe0, 0x71};
    pthread_mutex_lock(&k->lock);
    if (k->out_len + sizeof(keys) > sizeof(k->out)) {
        pthread_mutex_unlock(&k->lock);
        return -EAGAIN;
    }
    memcpy(k->out + k->out_len, keys, sizeof(keys));
    k->out_len += sizeof(keys);
    bool irq = k->ctr & CTR_KBD_INT;
    pthread_mutex_unlock(&k->lock);
    if (irq)
        irq_line_pulse(k->irq);
    return 0;
}

void i8042_save(struct i8042 *k, struct snap_w *w)
{
    pthread_mutex_lock(&k->lock);
    snap_put_u8(w, k->ctr);
    snap_put_u8(w, k->outp);
    snap_put_u8(w, k->pending_cmd);
    snap_put_u8(w, (uint8_t)k->out_len);
    snap_put(w, k->out, k->out_len);
    pthread_mutex_unlock(&k->lock);
}

int i8042_load(struct i8042 *k, struct snap_r *r)
{
    uint8_t ctr = snap_get_u8(r), outp = snap_get_u8(r), cmd = snap_get_u8(r);
    uint8_t len = snap_get_u8(r);
    uint8_t out[sizeof(k->out)];
    if (len > sizeof(out))
        return -EPROTO;
    snap_get(r, out, len);
    int e = snap_r_done(r);
    if (e < 0)
        return e;
    /* Only these two commands wait for a data byte (i8042_write). */
    if (cmd != 0 && cmd != CMD_WRITE_CTR && cmd != CMD_WRITE_OUTP)
        return -EPROTO;
    pthread_mutex_lock(&k->lock);
    k->ctr = ctr;
    k->outp = outp;
    k->pending_cmd = cmd;
    memcpy(k->out, out, len);
    k->out_len = len;
    bool irq = len && (ctr & CTR_KBD_INT);
    pthread_mutex_unlock(&k->lock);
    if (irq)
        irq_line_pulse(k->irq);
    return 0;
}
