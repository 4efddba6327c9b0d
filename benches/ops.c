/* Per-operation cost of the calls the path guard decides: each call is timed on its own
 * (clock_gettime around it) and the median and mean are printed in microseconds, one line per
 * operation:
 *   <op> <median_us> <mean_us>
 * Usage: ops DIR [N=2000]. DIR must exist and be empty enough for N files. Compiled by
 * benches/workloads.sh at bench time (cc -O2). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median, and the mean: a workload pays the mean, tail included (a call that wakes
 * another CPU costs tens of µs on these machines, and the median hides it). */
static void report(const char *op, double *t, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += t[i];
    qsort(t, n, sizeof *t, cmp);
    printf("%s %.2f %.2f\n", op, t[n / 2], sum / n);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: ops DIR [N]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    if (n < 1 || n > 100000) n = 2000;
    if (chdir(argv[1]) != 0) {
        perror("chdir");
        return 1;
    }
    double *t = calloc(n, sizeof *t);
    char a[64], b[64];
    if (!t) return 1;

    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "f%d", i);
        double t0 = now_us();
        int fd = open(a, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) { perror("create"); return 1; }
        close(fd);
        t[i] = now_us() - t0;
    }
    report("create", t, n);

    /* What tar does to each file it extracts: times (and, as root, mode) through the fd. */
    double *t2 = calloc(n, sizeof *t2);
    if (!t2) return 1;
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = 1700000000}};
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "m%d", i);
        int fd = open(a, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) { perror("create m"); return 1; }
        double t0 = now_us();
        if (futimens(fd, ts) != 0) { perror("futimens"); return 1; }
        double t1 = now_us();
        if (fchmod(fd, 0640) != 0) { perror("fchmod"); return 1; }
        t2[i] = now_us() - t1;
        t[i] = t1 - t0;
        close(fd);
    }
    report("futimens", t, n);
    report("fchmod", t2, n);
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "m%d", i);
        double t0 = now_us();
        if (utimensat(AT_FDCWD, a, ts, AT_SYMLINK_NOFOLLOW) != 0) { perror("utimensat"); return 1; }
        t[i] = now_us() - t0;
        unlink(a);
    }
    report("utimensat", t, n);
    free(t2);

    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "f%d", i);
        snprintf(b, sizeof b, "g%d", i);
        double t0 = now_us();
        if (rename(a, b) != 0) { perror("rename"); return 1; }
        t[i] = now_us() - t0;
    }
    report("rename", t, n);

    for (int i = 0; i < n; i++) {
        snprintf(b, sizeof b, "g%d", i);
        double t0 = now_us();
        if (unlink(b) != 0) { perror("unlink"); return 1; }
        t[i] = now_us() - t0;
    }
    report("unlink", t, n);

    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "d%d", i);
        double t0 = now_us();
        if (mkdir(a, 0755) != 0) { perror("mkdir"); return 1; }
        t[i] = now_us() - t0;
    }
    report("mkdir", t, n);

    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "d%d", i);
        double t0 = now_us();
        if (rmdir(a) != 0) { perror("rmdir"); return 1; }
        t[i] = now_us() - t0;
    }
    report("rmdir", t, n);

    /* A file nested 8 directories down, by a relative path (walks 8 components). */
    if (mkdir("n", 0755) || mkdir("n/n", 0755) || mkdir("n/n/n", 0755) ||
        mkdir("n/n/n/n", 0755) || mkdir("n/n/n/n/n", 0755) || mkdir("n/n/n/n/n/n", 0755) ||
        mkdir("n/n/n/n/n/n/n", 0755) || mkdir("n/n/n/n/n/n/n/n", 0755)) {
        perror("mkdir n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "n/n/n/n/n/n/n/n/f%d", i);
        double t0 = now_us();
        int fd = open(a, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) { perror("create deep"); return 1; }
        close(fd);
        t[i] = now_us() - t0;
        unlink(a);
    }
    report("create_deep", t, n);

    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        int fd = open("n", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) { perror("open ro"); return 1; }
        close(fd);
        t[i] = now_us() - t0;
    }
    report("open_ro", t, n);

    /* Loopback TCP connect (the guard routes connect(2)). */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 64) ||
        getsockname(l, (struct sockaddr *)&sa, &sl)) {
        perror("listen");
        return 1;
    }
    int m = n < 1000 ? n : 1000;
    for (int i = 0; i < m; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        double t0 = now_us();
        if (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0) { perror("connect"); return 1; }
        t[i] = now_us() - t0;
        int s = accept(l, NULL, NULL);
        close(s);
        close(c);
    }
    report("connect", t, m);
    return 0;
}
