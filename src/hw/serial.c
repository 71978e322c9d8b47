/* serial.c - 16550A UART emulation; see serial.h.
 *
 * Register and bit meanings follow the National Semiconductor PC16550D
 * datasheet. Linux's 8250 driver probes the scratch register, IER, the FIFO
 * bits of IIR and loopback through MCR/MSR; all of them answer as a real
 * 16550A would.
 */
#include "hw/serial.h"

#include "base/console.h"
#include "base/irq.h"
#include "base/snap.h"

#include <errno.h>
#include <string.h>

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define LCR_DLAB 0x80
#define IER_RDI 0x01  /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_MASK 0x0f
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0 /* both bits: FIFOs enabled, reads as a 16550A */
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void serial_init(struct serial *s, struct console *con, struct irq_line *irq)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->con = con;
    s->irq = irq;
    s->lsr = LSR_THRE | LSR_TEMT;
    /* A cable with the other side ready: carrier, data set ready, clear to send. */
    s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
    s->mcr = MCR_OUT2;
    s->dll = 0x0c; /* 9600 baud, the power-on divisor */
}

void serial_release(struct serial *s)
{
    pthread_mutex_destroy(&s->lock);
}

static uint8_t iir(const struct serial *s)
{
    uint8_t v = IIR_NONE;
    if ((s->ier & IER_RDI) && s->rx_len)
        v = IIR_RDI;
    else if ((s->ier & IER_THRI) && s->thre_pending)
        v = IIR_THRI;
    return v | (s->fifo_enabled ? IIR_FIFO : 0);
}

/* Enqueue received bytes; returns how many fit. Lock held. */
static size_t rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    while (n < len && s->rx_len < SERIAL_RX_SIZE) {
        s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_SIZE] = buf[n++];
        s->rx_len++;
    }
    if (n)
        s->lsr |= LSR_DR;
    return n;
}

size_t serial_rx(void *opaque, const uint8_t *buf, size_t len)
{
    struct serial *s = opaque;
    pthread_mutex_lock(&s->lock);
    bool was_empty = s->rx_len == 0;
    /* In loopback the receiver is disconnected from the line. */
    size_t n = (s->mcr & MCR_LOOP) ? 0 : rx_push(s, buf, len);
    bool irq = n && was_empty && (s->ier & IER_RDI);
    pthread_mutex_unlock(&s->lock);
    if (irq)
        irq_line_pulse(s->irq);
    return n;
}

static void serial_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
    struct serial *s = opaque;
    bool room = false;
    pthread_mutex_lock(&s->lock);
    uint8_t v = 0;
    switch (off) {
    case RBR_THR:
        if (s->lcr & LCR_DLAB) {
            v = s->dll;
        } else if (s->rx_len) {
            v = s->rx[s->rx_head];
            s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
            s->rx_len--;
            if (!s->rx_len)
                s->lsr &= (uint8_t)~LSR_DR;
            /* Half empty: let the console refill us. */
            room = s->rx_len == SERIAL_RX_SIZE / 2 || s->rx_len == 0;
        }
        break;
    case IER:
        v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
        break;
    case IIR_FCR:
        v = iir(s);
        /* Reading IIR while it reports THRE acknowledges that interrupt. */
        if ((v & 0x0f) == IIR_THRI)
            s->thre_pending = false;
        break;
    case LCR:
        v = s->lcr;
        break;
    case MCR:
        v = s->mcr;
        break;
    case LSR:
        v = s->lsr;
        break;
    case MSR:
        if (s->mcr & MCR_LOOP) {
            /* Loopback wires the modem outputs back to the inputs. */
            v = (uint8_t)(((s->mcr & MCR_DTR) ? MSR_DSR : 0) | ((s->mcr & MCR_RTS) ? MSR_CTS : 0) |
                          ((s->mcr & MCR_OUT1) ? MSR_RI : 0) | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0));
        } else {
            v = s->msr;
        }
        break;
    case SCR:
        v = s->scr;
        break;
    }
    pthread_mutex_unlock(&s->lock);
    /* Registers are bytes; a wider access returns the byte then ones. */
    memset(data, 0xff, len);
    data[0] = v;
    /* Outside our lock: the console may call back into serial_rx(). */
    if (room)
        console_rx_ready(s->con);
}

static void serial_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct serial *s = opaque;
    uint8_t v = data[0];
    bool irq = false;
    uint8_t out = 0;
    bool have_out = false;
    pthread_mutex_lock(&s->lock);
    switch (off) {
    case RBR_THR:
        if (s->lcr & LCR_DLAB) {
            s->dll = v;
            break;
        }
        if (s->mcr & MCR_LOOP) {
            bool was_empty = s->rx_len == 0;
            rx_push(s, &v, 1);
            irq = was_empty && (s->ier & IER_RDI);
        } else {
            out = v;
            have_out = true;
        }
        /* Sent at once: the holding register is empty again. A THRE
         * interrupt the guest has not yet acknowledged needs no new edge. */
        irq = irq || ((s->ier & IER_THRI) && !s->thre_pending);
        s->thre_pending = true;
        break;
    case IER:
        if (s->lcr & LCR_DLAB) {
            s->dlm = v;
            break;
        }
        /* Enabling THRI with an empty transmitter interrupts at once. */
        if ((v & IER_THRI) && !(s->ier & IER_THRI)) {
            s->thre_pending = true;
            irq = true;
        }
        if ((v & IER_RDI) && !(s->ier & IER_RDI) && s->rx_len)
            irq = true;
        s->ier = v & IER_MASK;
        break;
    case IIR_FCR:
        s->fifo_enabled = v & FCR_ENABLE;
        if (v & FCR_CLEAR_RX) {
            s->rx_head = s->rx_len = 0;
            s->lsr &= (uint8_t)~LSR_DR;
        }
        break;
    case LCR:
        s->lcr = v;
        break;
    case MCR:
        s->mcr = v & MCR_MASK;
        break;
    case LSR:
    case MSR:
        break; /* read-only on a 16550A: writes are ignored */
    case SCR:
        s->scr = v;
        break;
    }
    pthread_mutex_unlock(&s->lock);
    (void)len;
    if (have_out)
        console_write(s->con, &out, 1);
    if (irq)
        irq_line_pulse(s->irq);
}

const struct bus_ops serial_ops = {.read = serial_read, .write = serial_write};

/* The eight register bytes a snapshot holds, in this order. */
enum { ST_IER, ST_LCR, ST_MCR, ST_LSR, ST_MSR, ST_SCR, ST_DLL, ST_DLM, ST_REGS };

void serial_save(struct serial *s, struct snap_w *w)
{
    pthread_mutex_lock(&s->lock);
    const uint8_t regs[ST_REGS] = {s->ier, s->lcr, s->mcr, s->lsr, s->msr, s->scr, s->dll, s->dlm};
    snap_put(w, regs, sizeof(regs));
    snap_put_u8(w, s->fifo_enabled);
    snap_put_u8(w, s->thre_pending);
    /* The FIFO oldest byte first: the ring's head position is not state. */
    snap_put_u16(w, (uint16_t)s->rx_len);
    for (unsigned i = 0; i < s->rx_len; i++)
        snap_put_u8(w, s->rx[(s->rx_head + i) % SERIAL_RX_SIZE]);
    pthread_mutex_unlock(&s->lock);
}

/* What serial_load() reads, checked before anything is applied. */
struct serial_state {
    uint8_t reg[ST_REGS];
    bool fifo_enabled, thre_pending;
    uint16_t rx_len;
    uint8_t rx[SERIAL_RX_SIZE];
};

static int serial_read_state(struct snap_r *r, struct serial_state *st)
{
    snap_get(r, st->reg, sizeof(st->reg));
    st->fifo_enabled = snap_get_bool(r);
    st->thre_pending = snap_get_bool(r);
    st->rx_len = snap_get_u16(r);
    if (st->rx_len > SERIAL_RX_SIZE)
        return -EPROTO;
    snap_get(r, st->rx, st->rx_len);
    int e = snap_r_done(r);
    if (e < 0)
        return e;
    /* Bits this UART never sets, and the registers it keeps constant: LSR
     * is "transmitter empty" plus "data ready" exactly when bytes wait,
     * MSR a cable with the other side ready. */
    uint8_t lsr = LSR_THRE | LSR_TEMT | (st->rx_len ? LSR_DR : 0);
    if ((st->reg[ST_IER] & ~IER_MASK) || (st->reg[ST_MCR] & ~MCR_MASK) || st->reg[ST_LSR] != lsr ||
        st->reg[ST_MSR] != (MSR_DCD | MSR_DSR | MSR_CTS))
        return -EPROTO;
    return 0;
}

int serial_load(struct serial *s, struct snap_r *r)
{
    struct serial_state st;
    int e = serial_read_state(r, &st);
    if (e < 0)
        return e;
    pthread_mutex_lock(&s->lock);
    s->ier = st.reg[ST_IER], s->lcr = st.reg[ST_LCR], s->mcr = st.reg[ST_MCR];
    s->lsr = st.reg[ST_LSR], s->msr = st.reg[ST_MSR], s->scr = st.reg[ST_SCR];
    s->dll = st.reg[ST_DLL], s->dlm = st.reg[ST_DLM];
    s->fifo_enabled = st.fifo_enabled;
    s->thre_pending = st.thre_pending;
    memcpy(s->rx, st.rx, st.rx_len);
    s->rx_head = 0;
    s->rx_len = st.rx_len;
    bool irq = (iir(s) & 0x0f) != IIR_NONE;
    pthread_mutex_unlock(&s->lock);
    if (irq)
        irq_line_pulse(s->irq);
    return 0;
}
