/* ptytest.c - end-to-end test of arcvm on a terminal: the console is put in
 * raw mode while the guest runs, keys reach the guest, Ctrl-A x stops the VM
 * with status 0, and the terminal's settings are restored afterwards.
 *
 * Usage: ptytest ARCVM KERNEL INITRD     (needs /dev/kvm)
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int fails;
static char buf[1 << 16];
static size_t len;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        printf((cond) ? "ok   - " : "FAIL - ");                                                    \
        fails += !(cond);                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
    } while (0)

static int expect(int fd, const char *needle, int secs)
{
    time_t end = time(NULL) + secs;
    for (;;) {
        buf[len] = 0;
        if (strstr(buf, needle))
            return 1;
        if (time(NULL) >= end)
            return 0;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            if (len > sizeof(buf) / 2) {
                memmove(buf, buf + len - sizeof(buf) / 4, sizeof(buf) / 4);
                len = sizeof(buf) / 4;
            }
            ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
            if (n > 0)
                len += (size_t)n;
            else if (n < 0 && errno == EIO)
                return strstr(buf, needle) != NULL; /* the child closed the pty */
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ptytest ARCVM KERNEL INITRD\n");
        return 2;
    }
    int master;
    /* A cooked terminal, as a shell leaves it. */
    struct termios cooked;
    memset(&cooked, 0, sizeof(cooked));
    cooked.c_iflag = ICRNL | IXON;
    cooked.c_oflag = OPOST | ONLCR;
    cooked.c_cflag = CS8 | CREAD;
    cooked.c_lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | IEXTEN;
    cooked.c_cc[VINTR] = 3;
    cooked.c_cc[VEOF] = 4;
    cooked.c_cc[VMIN] = 1;
    cfsetspeed(&cooked, B38400);
    pid_t pid = forkpty(&master, NULL, &cooked, NULL);
    if (pid < 0) {
        perror("forkpty");
        return 1;
    }
    if (pid == 0) {
        execl(argv[1], argv[1], "run", "--kernel", argv[2], "--initrd", argv[3], "--cmdline",
              "quiet arcvm.mode=shell", (char *)NULL);
        _exit(127);
    }
    int booted = expect(master, "ARCVM-GUEST-READY", 300);
    CHECK(booted, "guest boots with its console on a terminal");
    struct termios during;
    tcgetattr(master, &during);
    CHECK(!(during.c_lflag & (ICANON | ECHO | ISIG)),
          "the terminal is raw while the guest runs (lflag 0x%x)", (unsigned)during.c_lflag);
    /* Ctrl-C must reach the guest, not kill arcvm: interrupt a sleep. */
    const char *cmd = "sleep 30; echo SL$((1))EPT\r";
    (void)!write(master, cmd, strlen(cmd));
    sleep(2);
    (void)!write(master, "\003", 1);
    const char *echo = "echo TTY-$((20+22))\r";
    (void)!write(master, echo, strlen(echo));
    /* Within 20 s: only if Ctrl-C ended the 30 s sleep in the guest. */
    CHECK(expect(master, "TTY-42", 20), "keys typed on the terminal reach the guest");
    CHECK(strstr(buf, "SL1EPT") == NULL, "Ctrl-C goes to the guest's foreground job");
    (void)!write(master, "\001x", 2); /* Ctrl-A x */
    int status = 0;
    time_t end = time(NULL) + 60;
    pid_t w = 0;
    while (time(NULL) < end && (w = waitpid(pid, &status, WNOHANG)) == 0) {
        expect(master, "\xff\xfe", 0); /* drain output so arcvm never blocks */
        usleep(100000);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    CHECK(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "Ctrl-A x stops the VM and arcvm exits 0 (status 0x%x)", status);
    struct termios after;
    tcgetattr(master, &after);
    CHECK((after.c_lflag & (ICANON | ECHO | ISIG)) == (cooked.c_lflag & (ICANON | ECHO | ISIG)) &&
              after.c_iflag == cooked.c_iflag && after.c_oflag == cooked.c_oflag,
          "the terminal's settings are restored on exit");
    close(master);
    printf("# ptytest: %d failed\n", fails);
    return fails ? 1 : 0;
}
