/*
 * edge-count: count falling edges on named GPIO lines with libgpiod v1 (Debian 12: 1.6).
 *
 *   edge-count [--chip NAME] [--events N] [--idle-ms MS] [--frame-gap-ms MS] [--verbose]
 *              LINE_NAME...
 *
 * Requests falling-edge events on every LINE_NAME (all on one chip; the chip is found
 * from the first name unless --chip is given), prints "ready" once the lines are
 * requested (so a script can start its stimulus without racing the request), then
 * reads events until N have arrived (--events) or no event came for --idle-ms
 * (default 2000).
 *
 * Output:
 *   ready
 *   edge <line_index> <ns>        with --verbose, per event (line_index = position of the
 *                                 name on the command line; ns = kernel CLOCK_MONOTONIC)
 *   frame <i> <ns> <bits>         with --frame-gap-ms: edges are grouped into frames split
 *                                 by gaps longer than MS; bit = line index (0 for the
 *                                 first name, 1 for the second: Wiegand D0, D1); ns is the
 *                                 frame's last edge
 *   count <n>
 * Exit status: 0, or 1 when --events N was given and fewer arrived.
 *
 * Only falling edges are requested: with the v1 uAPI, watching both edges makes the
 * kernel classify each event by re-reading the line, which misreports fast pulses.
 */
#include <errno.h>
#include <gpiod.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LINES 16
#define EVENT_BATCH 16

static const char *prog = "edge-count";

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [--chip NAME] [--events N] [--idle-ms MS] [--frame-gap-ms MS] "
            "[--verbose] LINE_NAME...\n",
            prog);
    exit(2);
}

static long parse_long(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        usage();
    return v;
}

static uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

struct edge {
    uint64_t ns;
    int idx; /* position of the line's name on the command line */
};

/* Accumulates bits of the current frame; flushed when a gap ends it. */
struct framer {
    uint64_t gap_ns;  /* 0: framing off */
    uint64_t last_ns;
    unsigned index;
    size_t len;
    char bits[1024];
};

static void frame_flush(struct framer *f)
{
    if (!f->len)
        return;
    f->bits[f->len] = '\0';
    printf("frame %u %llu %s\n", f->index++, (unsigned long long)f->last_ns, f->bits);
    f->len = 0;
}

static void frame_add(struct framer *f, int bit, uint64_t ns)
{
    if (!f->gap_ns)
        return;
    if (f->len && ns - f->last_ns > f->gap_ns)
        frame_flush(f);
    if (f->len < sizeof(f->bits) - 1)
        f->bits[f->len++] = (char)('0' + bit);
    f->last_ns = ns;
}

int main(int argc, char **argv)
{
    const char *chip_name = NULL, *names[MAX_LINES];
    long want = -1, idle_ms = 2000, frame_gap_ms = 0;
    int nnames = 0, verbose = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--verbose"))
            verbose = 1;
        else if (!strncmp(a, "--", 2)) {
            if (i + 1 >= argc)
                usage();
            const char *v = argv[++i];
            if (!strcmp(a, "--chip"))
                chip_name = v;
            else if (!strcmp(a, "--events"))
                want = parse_long(v);
            else if (!strcmp(a, "--idle-ms"))
                idle_ms = parse_long(v);
            else if (!strcmp(a, "--frame-gap-ms"))
                frame_gap_ms = parse_long(v);
            else
                usage();
        } else if (nnames < MAX_LINES)
            names[nnames++] = a;
        else
            usage();
    }
    if (!nnames)
        usage();

    struct gpiod_chip *chip;
    if (chip_name) {
        chip = gpiod_chip_open_by_name(chip_name);
    } else {
        /* gpiod_line_find scans every chip; keep the chip of the first line. */
        struct gpiod_line *first = gpiod_line_find(names[0]);
        chip = first ? gpiod_line_get_chip(first) : NULL;
    }
    if (!chip) {
        fprintf(stderr, "%s: cannot find chip for '%s': %s\n", prog,
                chip_name ? chip_name : names[0], strerror(errno));
        return 1;
    }

    struct gpiod_line_bulk bulk;
    gpiod_line_bulk_init(&bulk);
    for (int i = 0; i < nnames; i++) {
        struct gpiod_line *line = gpiod_chip_find_line(chip, names[i]);
        if (!line) {
            fprintf(stderr, "%s: line '%s' not on chip %s\n", prog, names[i],
                    gpiod_chip_name(chip));
            return 1;
        }
        gpiod_line_bulk_add(&bulk, line);
    }
    if (gpiod_line_request_bulk_falling_edge_events(&bulk, prog) < 0) {
        fprintf(stderr, "%s: request events: %s\n", prog, strerror(errno));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    struct framer framer = { .gap_ns = (uint64_t)frame_gap_ms * 1000000u };
    struct gpiod_line_event events[EVENT_BATCH];
    const struct timespec idle = { idle_ms / 1000, (idle_ms % 1000) * 1000000L };
    long count = 0;

    while (want < 0 || count < want) {
        struct gpiod_line_bulk ready;
        int rv = gpiod_line_event_wait_bulk(&bulk, &idle, &ready);
        if (rv < 0) {
            fprintf(stderr, "%s: wait: %s\n", prog, strerror(errno));
            return 1;
        }
        if (rv == 0)
            break; /* idle timeout */

        /* Events of different lines can be ready at once; read each line's queue and
         * merge by timestamp so bit order survives. Wiegand bits are ms apart, so at
         * most one event per line is pending in practice; sort anyway. */
        struct edge got[MAX_LINES * EVENT_BATCH];
        int ngot = 0;
        for (unsigned r = 0; r < gpiod_line_bulk_num_lines(&ready); r++) {
            struct gpiod_line *line = gpiod_line_bulk_get_line(&ready, r);
            int idx = 0;
            while (idx < nnames && gpiod_line_bulk_get_line(&bulk, idx) != line)
                idx++;
            int n = gpiod_line_event_read_multiple(line, events, EVENT_BATCH);
            if (n < 0) {
                fprintf(stderr, "%s: read events: %s\n", prog, strerror(errno));
                return 1;
            }
            for (int e = 0; e < n; e++) {
                if (events[e].event_type != GPIOD_LINE_EVENT_FALLING_EDGE)
                    continue;
                got[ngot].ns = ts_ns(&events[e].ts);
                got[ngot].idx = idx;
                ngot++;
            }
        }
        for (int i = 1; i < ngot; i++) /* insertion sort: ngot is tiny */
            for (int j = i; j > 0 && got[j].ns < got[j - 1].ns; j--) {
                struct edge t = got[j];
                got[j] = got[j - 1];
                got[j - 1] = t;
            }
        for (int i = 0; i < ngot; i++) {
            if (verbose)
                printf("edge %d %llu\n", got[i].idx, (unsigned long long)got[i].ns);
            frame_add(&framer, got[i].idx, got[i].ns);
            count++;
        }
    }
    frame_flush(&framer);
    printf("count %ld\n", count);

    gpiod_line_release_bulk(&bulk);
    gpiod_chip_close(chip);
    return (want >= 0 && count < want) ? 1 : 0;
}
