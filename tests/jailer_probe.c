/* jailer_probe.c - the program tests/jailer.sh jails in place of arcvm
 * (linked statically: the jail holds no libraries). It skips the flags the
 * jailer passes ("--id=...", "--start-time-us=..."), printing them, then
 * runs its commands: "report" prints what the jailed process sees (ids, the
 * root directory, limits, environment), "sleep N" prints "ready" and waits
 * so the test can look at it from outside. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

extern char **environ;

static void list_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        printf("ls %s: none\n", path);
        return;
    }
    struct dirent *e;
    printf("ls %s:", path);
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            printf(" %s", e->d_name);
    printf("\n");
    closedir(d);
}

static void report(void)
{
    struct rlimit nofile, fsize;
    getrlimit(RLIMIT_NOFILE, &nofile);
    getrlimit(RLIMIT_FSIZE, &fsize);
    int nenv = 0;
    for (char **e = environ; *e; e++)
        nenv++;
    char cwd[256] = "?";
    if (!getcwd(cwd, sizeof(cwd)))
        strcpy(cwd, "?");
    printf("uid=%u gid=%u groups=%d pid=%d\n", (unsigned)getuid(), (unsigned)getgid(),
           getgroups(0, NULL), (int)getpid());
    printf("cwd=%s env=%d\n", cwd, nenv);
    printf("nofile=%llu fsize=%lld\n", (unsigned long long)nofile.rlim_cur,
           fsize.rlim_cur == RLIM_INFINITY ? -1LL : (long long)fsize.rlim_cur);
    printf("regain=%s\n", setuid(0) == 0 ? "yes" : "no");
    list_dir("/");
    list_dir("/dev");
    list_dir("/dev/net");
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++)
        printf("flag %s\n", argv[i]);
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "report")) {
            report();
        } else if (!strcmp(argv[i], "sleep") && i + 1 < argc) {
            printf("ready\n");
            fflush(stdout);
            sleep((unsigned)atoi(argv[++i]));
        } else {
            printf("unknown command %s\n", argv[i]);
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
