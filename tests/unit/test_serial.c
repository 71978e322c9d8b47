/* test_serial.c - the 16550A as Linux's 8250 driver probes and drives it. */
#include "unit.h"

#include "hw/serial.h"
#include "base/console.h"
#include "base/irq.h"

#include <fcntl.h>
#include <sys/eventfd.h>

static struct serial s;
static struct console con;
static struct irq_line irq;
static int out[2];

static int setup(void **state)
{
    (void)state;
    assert_int_equal(pipe2(out, O_NONBLOCK), 0);
    console_init(&con, -1, out[1], false, NULL);
    irq = (struct irq_line){NULL, 4, eventfd(0, EFD_NONBLOCK)};
    serial_init(&s, &con, &irq);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    serial_release(&s);
    console_release(&con);
    close(irq.fd);
    close(out[0]);
    close(out[1]);
    return 0;
}

static uint8_t rd(unsigned reg)
{
    uint8_t v;
    serial_ops.read(&s, reg, &v, 1);
    return v;
}

static void wr(unsigned reg, uint8_t v)
{
    serial_ops.write(&s, reg, &v, 1);
}

/* Interrupt edges delivered since the last call. */
static uint64_t edges(void)
{
    uint64_t n = 0;
    if (read(irq.fd, &n, sizeof(n)) != sizeof(n))
        return 0;
    return n;
}

static void test_probe(void **state)
{
    (void)state;
    /* Scratch register. */
    wr(7, 0xa5);
    assert_int_equal(rd(7), 0xa5);
    /* IER keeps its four bits only. */
    wr(1, 0xff);
    assert_int_equal(rd(1), 0x0f);
    wr(1, 0);
    /* FIFO enable shows as a 16550A in IIR[7:6]. */
    wr(2, 0x01);
    assert_int_equal(rd(2) & 0xc0, 0xc0);
    /* Loopback: MCR outputs come back on MSR inputs. */
    wr(4, 0x10 | 0x0a); /* LOOP | RTS | OUT2 */
    assert_int_equal(rd(6) & 0xf0, 0x90); /* DCD | CTS */
    /* and a transmitted byte comes back as received. */
    wr(0, 'L');
    assert_true(rd(5) & 0x01);
    assert_int_equal(rd(0), 'L');
    assert_false(rd(5) & 0x01);
    char c;
    assert_int_equal(read(out[0], &c, 1), -1); /* nothing went to the host */
    wr(4, 0x0b);
    /* Divisor latch. */
    wr(3, 0x80);
    wr(0, 0x01);
    wr(1, 0x00);
    assert_int_equal(rd(0), 0x01);
    wr(3, 0x03);
    assert_int_equal(rd(3), 0x03);
}

static void test_transmit_and_thre_irq(void **state)
{
    (void)state;
    edges();
    assert_true(rd(5) & 0x60); /* THRE | TEMT */
    wr(0, 'h');
    wr(0, 'i');
    char buf[4] = {0};
    assert_int_equal(read(out[0], buf, sizeof(buf)), 2);
    assert_string_equal(buf, "hi");
    assert_int_equal(edges(), 0); /* THRI not enabled */
    wr(1, 0x02);                  /* enable THRI with an empty transmitter */
    assert_int_equal(edges(), 1);
    assert_int_equal(rd(2) & 0x0f, 0x02); /* THRE pending, and reading acks it */
    assert_int_equal(rd(2) & 0x0f, 0x01);
    wr(0, 'x');
    assert_int_equal(edges(), 1);
    wr(0, 'y'); /* not acknowledged yet: no second edge */
    assert_int_equal(edges(), 0);
    assert_int_equal(rd(2) & 0x0f, 0x02);
    wr(1, 0);
}

static void test_receive(void **state)
{
    (void)state;
    edges();
    assert_int_equal(serial_rx(&s, (const uint8_t *)"ab", 2), 2);
    assert_int_equal(edges(), 0); /* RDI off */
    wr(1, 0x01);
    assert_int_equal(edges(), 1); /* enabling RDI with data waiting */
    assert_int_equal(rd(2) & 0x0f, 0x04);
    assert_int_equal(rd(0), 'a');
    assert_int_equal(rd(0), 'b');
    assert_int_equal(rd(2) & 0x0f, 0x01);
    assert_false(rd(5) & 0x01);
    assert_int_equal(rd(0), 0); /* empty: reads 0, no crash */
    assert_int_equal(serial_rx(&s, (const uint8_t *)"c", 1), 1);
    assert_int_equal(edges(), 1);
    rd(0);
    /* The FIFO is bounded: the rest stays with the console. */
    static uint8_t big[SERIAL_RX_SIZE + 100];
    memset(big, 'z', sizeof(big));
    assert_int_equal(serial_rx(&s, big, sizeof(big)), SERIAL_RX_SIZE);
    assert_int_equal(serial_rx(&s, big, 1), 0);
    wr(2, 0x03); /* FCR: clear the receive FIFO */
    assert_false(rd(5) & 0x01);
    wr(1, 0);
}

static void test_hostile_offsets(void **state)
{
    (void)state;
    uint8_t v[4];
    serial_ops.read(&s, 0, v, 4); /* wide access: first byte meaningful, no crash */
    serial_ops.write(&s, 5, v, 1); /* LSR is read-only */
    assert_true(rd(5) & 0x60);
}

/* Output limits (PUT /serial's rate_limiter, and its file semantics):
 * bytes over the rate are dropped, not delayed, and counted. */
static void test_output_rate_limit(void **state)
{
    (void)state;
    /* 4 bytes, refilled over an hour: the fifth transmitted byte is over. */
    struct rate_limiter_config rl = {.bandwidth = {4, 0, 3600u * 1000u}};
    console_limit_output(&con, &rl, false);
    wr(3, 0x03); /* 8N1, DLAB off */
    for (int i = 0; i < 6; i++)
        wr(0, (uint8_t)('a' + i));
    char buf[16];
    assert_int_equal(read(out[0], buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "abcd", 4);
    uint64_t rate, room;
    console_dropped(&con, &rate, &room);
    assert_int_equal(rate, 2);
    assert_int_equal(room, 0);
}

/* A reader that is behind: with drop_when_full the write returns at once
 * and the bytes are counted; without, the guest would be held back. */
static void test_output_drop_when_full(void **state)
{
    (void)state;
    console_limit_output(&con, NULL, true);
    char fill[4096];
    memset(fill, 'x', sizeof(fill));
    while (write(out[1], fill, sizeof(fill)) > 0) {
    }
    console_write(&con, (const uint8_t *)"0123456789", 10);
    uint64_t rate, room;
    console_dropped(&con, &rate, &room);
    assert_int_equal(rate, 0);
    assert_int_equal(room, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit_and_thre_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_drop_when_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
