/*
 * storm.c - a loopback connection storm: connect/close against accept/close.
 *
 * USAGE: storm server PORT SECONDS
 *        storm client ADDR PORT SECONDS
 *
 * The client connects, then closes with SO_LINGER 0 (a reset, no TIME_WAIT),
 * as fast as it can for SECONDS, and prints "connections N rate R/s". The
 * server accepts and closes. Each connection makes six TCP state changes
 * (client 7->2->1->7, child 10->3->1->7 ... as seen by states.bt) and one
 * LISTEN->SYN_RECV handshake. Build: gcc -O2 -o storm storm.c
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int server(int port, double seconds)
{
    int one = 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4096)) {
        perror("server");
        return 1;
    }
    printf("listening %d\n", port);
    fflush(stdout);
    double end = now() + seconds;
    long n = 0;
    while (now() < end) {
        int c = accept(s, NULL, NULL);
        if (c >= 0) {
            close(c);
            n++;
        }
    }
    printf("accepted %ld\n", n);
    return 0;
}

static int client(const char *addr, int port, double seconds)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    inet_pton(AF_INET, addr, &a.sin_addr);
    double start = now(), end = start + seconds;
    long n = 0, failed = 0;
    while (now() < end) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
            n++;
        else
            failed++;
        close(s);
    }
    printf("connections %ld failed %ld rate %.0f/s\n", n, failed, n / (now() - start));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "server"))
        return server(atoi(argv[2]), atof(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "client"))
        return client(argv[2], atoi(argv[3]), atof(argv[4]));
    fprintf(stderr, "usage: storm server PORT SECONDS | storm client ADDR PORT SECONDS\n");
    return 2;
}
