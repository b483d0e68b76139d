/* SPDX-License-Identifier: Apache-2.0 */
/*
 * load.c - workloads for bench/sensor_overhead.py, in C so the measured
 * cost is the syscalls' and not an interpreter's.
 *
 *   load open N PATH        N x open(PATH, O_RDONLY) + close
 *   load write N PATH       N x open(PATH, O_WRONLY|O_CREAT|O_TRUNC) + close
 *   load exec N             N x fork + exec /bin/true + wait
 *   load rate R SECS PATH   write-opens of PATH paced at R per second for SECS
 *
 * Prints the wall time in seconds (and for rate, the achieved rate).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int opens(long n, const char *path, int flags)
{
    for (long i = 0; i < n; i++) {
        int fd = open(path, flags, 0600);

        if (fd < 0) {
            perror(path);
            return 1;
        }
        close(fd);
    }
    return 0;
}

static int execs(long n)
{
    for (long i = 0; i < n; i++) {
        pid_t p = fork();
        int st;

        if (p < 0) {
            perror("fork");
            return 1;
        }
        if (p == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child failed\n");
            return 1;
        }
    }
    return 0;
}

static int rate(long r, double secs, const char *path)
{
    double t0 = now(), end = t0 + secs;
    long done = 0, batch = r / 100 > 0 ? r / 100 : 1; /* 10 ms slices */

    while (now() < end) {
        double slice = t0 + (double)(done + batch) / (double)r;

        if (opens(batch, path, O_WRONLY | O_CREAT | O_TRUNC))
            return 1;
        done += batch;
        while (now() < slice)
            usleep(200);
    }
    printf("%.3f %ld %.0f\n", now() - t0, done, done / (now() - t0));
    return 0;
}

int main(int argc, char **argv)
{
    double t0 = now();
    int rc;

    if (argc >= 4 && strcmp(argv[1], "open") == 0)
        rc = opens(atol(argv[2]), argv[3], O_RDONLY);
    else if (argc >= 4 && strcmp(argv[1], "write") == 0)
        rc = opens(atol(argv[2]), argv[3], O_WRONLY | O_CREAT | O_TRUNC);
    else if (argc >= 3 && strcmp(argv[1], "exec") == 0)
        rc = execs(atol(argv[2]));
    else if (argc >= 5 && strcmp(argv[1], "rate") == 0)
        return rate(atol(argv[2]), atof(argv[3]), argv[4]);
    else {
        fprintf(stderr, "usage: load open|write N PATH | exec N | rate R SECS PATH\n");
        return 2;
    }
    if (rc == 0)
        printf("%.6f\n", now() - t0);
    return rc;
}
