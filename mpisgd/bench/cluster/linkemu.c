/* The link emulator's packet loop in C (see emulator.py, which opens the TUN devices and runs this).

   linkemu OUT SLOT RATE_BPS,DELAY_S,FD ...     (one RATE,DELAY,FD per host, in host order)

   Forwards IPv4 packets between the hosts' TUN file descriptors with the link model of spec.py:
   serialized FIFO on the sender's uplink, max(delay_i, delay_j) on the way, serialized FIFO on the
   receiver's downlink; an event heap orders the two stages. Lateness (delivery time minus model
   time) goes into a 1-us histogram. On SIGTERM/SIGINT (or when the parent dies) it writes one JSON
   object to OUT: packets, dropped, bytes_sent, bytes_received, lateness_s {median, p99, max}, cpu_s.
   Blocks in ppoll() until a packet comes or the next one is due; never spins. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_HOSTS 250
#define PACKET_MAX 65536 + 100 /* TUN_MTU (65000) plus room, as the Python loop reads */
#define READ_BURST 8           /* packets read from one host before the due deliveries are made */
#define BINS 1000000           /* lateness histogram: 1 us bins up to 1 s, then the overflow bin */

typedef struct { double due; uint64_t seq; int stage, target, len; unsigned char *buf; } event_t;

static volatile sig_atomic_t stopping = 0;
static int hosts, slot;
static double seconds_per_bit[MAX_HOSTS], delay[MAX_HOSTS], up_free[MAX_HOSTS], down_free[MAX_HOSTS];
static uint64_t sent[MAX_HOSTS], received[MAX_HOSTS], packets, dropped, sequence, *histogram;
static double worst = 0.0;
static event_t *heap;
static size_t heap_len, heap_cap;
static unsigned char **pool;
static size_t pool_len, pool_cap;

static void on_signal(int sig) { (void)sig; stopping = 1; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int earlier(const event_t *a, const event_t *b) {
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void push(event_t e) {
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? 2 * heap_cap : 1024;
        heap = realloc(heap, heap_cap * sizeof *heap);
        if (!heap) { perror("linkemu: realloc"); exit(1); }
    }
    size_t i = heap_len++;
    e.seq = ++sequence;
    while (i > 0 && earlier(&e, &heap[(i - 1) / 2])) { heap[i] = heap[(i - 1) / 2]; i = (i - 1) / 2; }
    heap[i] = e;
}

static event_t pop(void) {
    event_t top = heap[0], last = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= heap_len) break;
        if (child + 1 < heap_len && earlier(&heap[child + 1], &heap[child])) child++;
        if (!earlier(&heap[child], &last)) break;
        heap[i] = heap[child];
        i = child;
    }
    if (heap_len) heap[i] = last;
    return top;
}

static unsigned char *buffer(void) {
    if (pool_len) return pool[--pool_len];
    unsigned char *b = malloc(PACKET_MAX);
    if (!b) { perror("linkemu: malloc"); exit(1); }
    return b;
}

static void release(unsigned char *b) {
    if (pool_len == pool_cap) {
        pool_cap = pool_cap ? 2 * pool_cap : 256;
        pool = realloc(pool, pool_cap * sizeof *pool);
        if (!pool) { perror("linkemu: realloc"); exit(1); }
    }
    pool[pool_len++] = b;
}

static double quantile(double q) {
    if (!packets) return NAN;
    uint64_t k = (uint64_t)(q * packets), seen = 0;
    if (k >= packets) k = packets - 1;
    for (int i = 0; i < BINS; i++) {
        seen += histogram[i];
        if (seen > k) return fmin((i + 1) * 1e-6, worst); /* the bin's upper edge, never above the max */
    }
    return worst; /* in the overflow bin (over 1 s late) */
}

static void json_number(FILE *out, double x) {
    if (isnan(x)) fputs("null", out); else fprintf(out, "%.9g", x);
}

static void write_report(const char *path) {
    FILE *out = fopen(path, "w");
    if (!out) { perror(path); exit(1); }
    fprintf(out, "{\"engine\": \"c\", \"packets\": %llu, \"dropped\": %llu, \"bytes_sent\": [",
            (unsigned long long)packets, (unsigned long long)dropped);
    for (int h = 0; h < hosts; h++) fprintf(out, "%s%llu", h ? ", " : "", (unsigned long long)sent[h]);
    fputs("], \"bytes_received\": [", out);
    for (int h = 0; h < hosts; h++) fprintf(out, "%s%llu", h ? ", " : "", (unsigned long long)received[h]);
    fputs("], \"lateness_s\": {\"median\": ", out);
    json_number(out, quantile(0.5));
    fputs(", \"p99\": ", out);
    json_number(out, quantile(0.99));
    fputs(", \"max\": ", out);
    json_number(out, packets ? worst : NAN);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    fprintf(out, "}, \"cpu_s\": %.6f}\n", usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 +
                                           usage.ru_stime.tv_sec + usage.ru_stime.tv_usec * 1e-6);
    if (fclose(out)) { perror(path); exit(1); }
}

static void deliver(const event_t *e, int fd) {
    if (write(fd, e->buf, e->len) < 0) {
        if (errno != EAGAIN && errno != EIO) { perror("linkemu: write"); exit(1); }
        dropped++;
        return;
    }
    received[e->target] += e->len;
    double late = now() - e->due;
    if (late < 0) late = 0;
    if (late > worst) worst = late;
    long bin = (long)(late * 1e6);
    histogram[bin < BINS ? bin : BINS]++;
    packets++;
}

static void deliver_due(struct pollfd *fds) {
    double t = now();
    while (heap_len && heap[0].due <= t) {
        event_t e = pop();
        if (e.stage == 0) { /* reached the target's downlink: queue behind what is on it */
            double start = down_free[e.target] > e.due ? down_free[e.target] : e.due;
            down_free[e.target] = start + e.len * 8 * seconds_per_bit[e.target];
            e.due = down_free[e.target];
            e.stage = 1;
            push(e);
            continue;
        }
        deliver(&e, fds[e.target].fd);
        release(e.buf);
        t = now();
    }
}

int main(int argc, char **argv) {
    if (argc < 4 || argc - 3 > MAX_HOSTS) {
        fprintf(stderr, "usage: linkemu OUT SLOT RATE_BPS,DELAY_S,FD ... (at most %d hosts)\n", MAX_HOSTS);
        return 2;
    }
    const char *out = argv[1];
    slot = atoi(argv[2]);
    hosts = argc - 3;
    struct pollfd fds[MAX_HOSTS];
    for (int h = 0; h < hosts; h++) {
        double rate;
        if (sscanf(argv[3 + h], "%lf,%lf,%d", &rate, &delay[h], &fds[h].fd) != 3 || rate <= 0) {
            fprintf(stderr, "linkemu: bad host argument %s\n", argv[3 + h]);
            return 2;
        }
        seconds_per_bit[h] = 1.0 / rate;
        fds[h].events = POLLIN;
    }
    histogram = calloc(BINS + 1, sizeof *histogram);
    if (!histogram) { perror("linkemu: calloc"); return 1; }
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* the Python emulator that started us was killed: stop too */
    if (getppid() == 1) stopping = 1;
    unsigned char *packet = NULL;
    int first = 0;
    while (!stopping) {
        double t = now(), wait = heap_len ? heap[0].due - t : 0.05;
        if (wait > 0.05) wait = 0.05;
        if (wait < 0) wait = 0;
        struct timespec timeout = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
        int ready = ppoll(fds, hosts, &timeout, NULL);
        if (ready < 0 && errno != EINTR) { perror("linkemu: ppoll"); return 1; }
        for (int k = 0; ready > 0 && k < hosts; k++) {
            int source = (first + k) % hosts; /* a different host first each round: none is favoured */
            if (!(fds[source].revents & POLLIN)) continue;
            for (int n = 0; n < READ_BURST; n++) {
                if (!packet) packet = buffer();
                ssize_t len = read(fds[source].fd, packet, PACKET_MAX);
                if (len < 0) {
                    if (errno == EAGAIN || errno == EINTR) break;
                    perror("linkemu: read");
                    return 1;
                }
                int target = (len >= 20 && packet[0] >> 4 == 4) ? packet[19] - 1 : -1;
                if (target < 0 || target >= hosts || target == source || packet[16] != 10 ||
                    packet[17] != 201 || packet[18] != slot) {
                    dropped++; /* not IPv4 to another emulated host (e.g. IPv6 chatter) */
                    continue;
                }
                t = now(); /* sent now: its uplink serialization starts when the uplink is free */
                double start = up_free[source] > t ? up_free[source] : t;
                up_free[source] = start + len * 8 * seconds_per_bit[source];
                sent[source] += len;
                double way = delay[source] > delay[target] ? delay[source] : delay[target];
                push((event_t){up_free[source] + way, 0, 0, target, (int)len, packet});
                packet = NULL;
            }
            deliver_due(fds); /* between hosts' bursts too: with many hosts a round of reads is long */
        }
        first = (first + 1) % hosts;
        deliver_due(fds);
    }
    write_report(out);
    return 0;
}
