/*
 * wiegand-inject: play Wiegand frames into a gpio-sim chip (runs inside the HIL guest).
 *
 *   wiegand-inject SIM_DIR D0_OFFSET D1_OFFSET BITS [--count N]
 *   wiegand-inject SIM_DIR D0_OFFSET D1_OFFSET --random-frames N [--seed S]
 *   wiegand-inject SIM_DIR --stdin
 *       common options: [--bit-gap-us 2000] [--frame-gap-ms 150] [--pulse-us 100] [--edges FILE]
 *
 * --stdin: one frame per input line "D0_OFFSET D1_OFFSET BITS", sent as soon as the line is
 * read (at least --frame-gap-ms after the previous frame on the same lines); "frame <i> <ns>" is
 * printed once it is sent, so a script can interleave frames with other actions. One process for
 * many frames: a fresh process per frame is far more often stalled mid-frame under TCG.
 *
 * SIM_DIR is /sys/devices/platform/<dev_name>/<chip_name> (GPIO_SIM_DIR in the guest).
 * A Wiegand reader holds D0 and D1 high and sends each bit as a short low pulse: on D0
 * for a 0, on D1 for a 1.  gpio-sim has no "drive an input" knob other than the line's
 * pull, so a pulse is "pull-down" then "pull-up" written to SIM_DIR/sim_gpioN/pull.
 *
 * Output, one line per frame, flushed at once so a consumer can follow along:
 *   frame <i> <ns>            fixed BITS mode
 *   frame <i> <ns> <bits>     --random-frames mode (the 26 bits sent)
 * <i> counts from 0; <ns> is CLOCK_MONOTONIC (the clock libgpiod event timestamps use)
 * read just before the write that makes the frame's last falling edge, so a latency
 * measured from it is an upper bound (it includes the cost of that write).
 *
 * --edges FILE: every edge as it really happened, one line per bit, appended after each frame:
 *   <frame> <bit> <line 0|1> <fall_before> <fall_after> <rise_before> <rise_after>
 * CLOCK_MONOTONIC ns read just before and just after each write to `pull`. The kernel stamps the
 * edge while the write runs (gpio-sim fires the interrupt from inside it), so each stamp lies
 * between the two: a host verifier can tell a frame sent at reader timing from one the emulated
 * machine stretched (the injector descheduled mid-frame), which a decoder must refuse.
 *
 * Timing is scheduled on absolute deadlines (clock_nanosleep TIMER_ABSTIME) so slow
 * writes under QEMU/TCG do not accumulate drift over a frame. A late bit is not caught up on:
 * falling edges are never closer than --bit-gap-us, and frames never closer than
 * --frame-gap-ms, as from a real reader.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WIEGAND26_BITS 26

static const char *prog = "wiegand-inject";

static void usage(void)
{
    fprintf(stderr,
            "usage: %s SIM_DIR D0_OFFSET D1_OFFSET BITS [--count N]\n"
            "       %s SIM_DIR D0_OFFSET D1_OFFSET --random-frames N [--seed S]\n"
            "       %s SIM_DIR --stdin     (lines of \"D0_OFFSET D1_OFFSET BITS\")\n"
            "options: [--bit-gap-us US (2000)] [--frame-gap-ms MS (150)] [--pulse-us US (100)]\n"
            "         [--edges FILE]\n",
            prog, prog, prog);
    exit(2);
}

static void die(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
    exit(1);
}

/* Parse a non-negative decimal number or exit with a usage message. */
static uint64_t parse_u64(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-') {
        fprintf(stderr, "%s: bad %s: '%s'\n", prog, what, s);
        usage();
    }
    return v;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t deadline_ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000u),
        .tv_nsec = (long)(deadline_ns % 1000000000u),
    };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* sysfs attributes take the whole value in one write; the offset is irrelevant but
 * pwrite at 0 keeps each write independent of the previous one. */
static void set_pull(int fd, int high)
{
    static const char up[] = "pull-up", down[] = "pull-down";
    const char *v = high ? up : down;
    size_t len = high ? sizeof(up) - 1 : sizeof(down) - 1;
    if (pwrite(fd, v, len, 0) != (ssize_t)len)
        die("write pull");
}

static int open_pull(const char *sim_dir, uint64_t offset)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/sim_gpio%" PRIu64 "/pull", sim_dir, offset);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        die(path);
    return fd;
}

/* xorshift64*: tiny, deterministic for a given seed on every libc. */
static uint64_t rng_state;
static uint32_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/*
 * Standard 26-bit Wiegand (H10301): P FFFFFFFF CCCCCCCCCCCCCCCC P
 * bit 0 is even parity over bits 1..12, bit 25 is odd parity over bits 13..24.
 */
static void random_wiegand26(char out[WIEGAND26_BITS + 1])
{
    uint32_t facility = rng_next() & 0xff;
    uint32_t card = rng_next() & 0xffff;
    uint32_t data = (facility << 16) | card; /* 24 data bits, MSB first on the wire */
    int ones_first = 0, ones_last = 0;

    for (int i = 0; i < 24; i++) {
        int bit = (data >> (23 - i)) & 1;
        out[1 + i] = (char)('0' + bit);
        if (i < 12)
            ones_first += bit;
        else
            ones_last += bit;
    }
    out[0] = (char)('0' + (ones_first & 1));        /* makes bits 0..12 even */
    out[25] = (char)('0' + !(ones_last & 1));       /* makes bits 13..25 odd */
    out[WIEGAND26_BITS] = '\0';
}

static FILE *edges_out;   /* --edges */

/* Sends one frame on the lines whose pull files are fd[0] (D0) and fd[1] (D1), the first bit at
 * *next; returns the time just before the last falling edge and leaves *next one bit slot after
 * it, or one bit slot after the last edge really written if that came later. */
static uint64_t send_frame(const int fd[2], const char *bits, uint64_t *next, uint64_t bit_gap, uint64_t pulse,
                           uint64_t frame)
{
    static uint64_t stamps[1024][4];
    uint64_t last_fall = 0, last_rise = 0;
    size_t b;
    for (b = 0; bits[b] && b < 1024; b++) {
        int line = bits[b] == '1';
        sleep_until(*next);
        stamps[b][0] = last_fall = now_ns();
        set_pull(fd[line], 0);           /* falling edge: the bit */
        stamps[b][1] = now_ns();
        sleep_until(last_fall + pulse);
        stamps[b][2] = now_ns();
        set_pull(fd[line], 1);           /* back to idle */
        stamps[b][3] = last_rise = now_ns();
        /* After a stall, no catch-up burst: the bits that follow keep their spacing. A burst of
         * writes without a sleep would keep the guest's one CPU from the driver that reads them. */
        *next += bit_gap;
        if (*next < last_fall + bit_gap)
            *next = last_fall + bit_gap;
    }
    if (*next < last_rise + bit_gap)
        *next = last_rise + bit_gap;
    if (edges_out) {
        for (size_t i = 0; i < b; i++)
            fprintf(edges_out, "%" PRIu64 " %zu %c %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", frame, i,
                    bits[i], stamps[i][0], stamps[i][1], stamps[i][2], stamps[i][3]);
        if (fflush(edges_out) != 0)
            die("write --edges");
    }
    return last_fall;
}

#define MAX_OFFSETS 1024

/* --stdin: frames from input lines "D0_OFFSET D1_OFFSET BITS". */
static int stdin_mode(const char *sim_dir, uint64_t bit_gap, uint64_t pulse, uint64_t frame_gap)
{
    static int fds[MAX_OFFSETS];           /* pull fd by offset, opened on first use */
    static uint64_t free_at[MAX_OFFSETS];  /* earliest next frame start on that line */
    char line[4096];
    uint64_t f = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof(line), stdin)) {
        char bits[1024];
        unsigned long long d0, d1;
        if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
            continue;
        if (sscanf(line, "%llu %llu %1023s", &d0, &d1, bits) != 3 || d0 >= MAX_OFFSETS || d1 >= MAX_OFFSETS ||
            d0 == d1 || strspn(bits, "01") != strlen(bits)) {
            fprintf(stderr, "%s: bad input line (want \"D0_OFFSET D1_OFFSET BITS\"): %s", prog, line);
            return 2;
        }
        uint64_t next = now_ns() + bit_gap;
        int fd[2] = { fds[d0], fds[d1] };
        for (int i = 0; i < 2; i++) {
            uint64_t off = i ? d1 : d0;
            if (!fd[i]) {
                fd[i] = fds[off] = open_pull(sim_dir, off);
                set_pull(fd[i], 1);      /* idle; the first bit comes one bit time later */
            }
            if (free_at[off] > next)
                next = free_at[off];
        }
        uint64_t last_fall = send_frame(fd, bits, &next, bit_gap, pulse, f);
        free_at[d0] = free_at[d1] = next + frame_gap;
        printf("frame %" PRIu64 " %" PRIu64 "\n", f++, last_fall);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *pos[4];
    int npos = 0;
    uint64_t count = 1, random_frames = 0, seed = 1;
    uint64_t bit_gap_us = 2000, frame_gap_ms = 150, pulse_us = 100;
    int random_mode = 0, stdin_input = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--stdin")) {
            stdin_input = 1;
        } else if (strncmp(a, "--", 2) == 0) {
            if (i + 1 >= argc)
                usage();
            const char *v = argv[++i];
            if (!strcmp(a, "--count"))
                count = parse_u64(v, "--count");
            else if (!strcmp(a, "--random-frames")) {
                random_frames = parse_u64(v, "--random-frames");
                random_mode = 1;
            } else if (!strcmp(a, "--seed"))
                seed = parse_u64(v, "--seed");
            else if (!strcmp(a, "--bit-gap-us"))
                bit_gap_us = parse_u64(v, "--bit-gap-us");
            else if (!strcmp(a, "--frame-gap-ms"))
                frame_gap_ms = parse_u64(v, "--frame-gap-ms");
            else if (!strcmp(a, "--pulse-us"))
                pulse_us = parse_u64(v, "--pulse-us");
            else if (!strcmp(a, "--edges")) {
                if (!(edges_out = fopen(v, "w")))
                    die(v);
            }
            else
                usage();
        } else {
            if (npos == 4)
                usage();
            pos[npos++] = a;
        }
    }
    if (npos != (stdin_input ? 1 : random_mode ? 3 : 4) || (stdin_input && random_mode))
        usage();
    if (pulse_us >= bit_gap_us) {
        fprintf(stderr, "%s: --pulse-us must be shorter than --bit-gap-us\n", prog);
        usage();
    }
    if (stdin_input)
        return stdin_mode(pos[0], bit_gap_us * 1000u, pulse_us * 1000u, frame_gap_ms * 1000000u);

    const char *sim_dir = pos[0];
    uint64_t d0 = parse_u64(pos[1], "D0_OFFSET");
    uint64_t d1 = parse_u64(pos[2], "D1_OFFSET");
    const char *fixed_bits = random_mode ? NULL : pos[3];
    if (fixed_bits) {
        if (!*fixed_bits || strspn(fixed_bits, "01") != strlen(fixed_bits)) {
            fprintf(stderr, "%s: BITS must be a non-empty string of 0 and 1\n", prog);
            usage();
        }
    }
    if (random_mode) {
        count = random_frames;
        /* xorshift must not start at 0; mix the seed so small seeds differ well. */
        rng_state = (seed ^ 0x9E3779B97F4A7C15ULL) ? (seed ^ 0x9E3779B97F4A7C15ULL) : 1;
    }

    /* Open each pull file once: under TCG an open() costs more than the write. */
    int fd[2] = { open_pull(sim_dir, d0), open_pull(sim_dir, d1) };

    /* Idle state of a Wiegand bus is both lines high. */
    set_pull(fd[0], 1);
    set_pull(fd[1], 1);

    setvbuf(stdout, NULL, _IOLBF, 0);

    const uint64_t bit_gap = bit_gap_us * 1000u, pulse = pulse_us * 1000u;
    const uint64_t frame_gap = frame_gap_ms * 1000000u;
    char bits_buf[WIEGAND26_BITS + 1];
    uint64_t next = now_ns() + bit_gap; /* let the idle-high state settle for one bit time */

    for (uint64_t f = 0; f < count; f++) {
        const char *bits = fixed_bits;
        if (random_mode) {
            random_wiegand26(bits_buf);
            bits = bits_buf;
        }
        uint64_t last_fall = send_frame(fd, bits, &next, bit_gap, pulse, f);
        if (random_mode)
            printf("frame %" PRIu64 " %" PRIu64 " %s\n", f, last_fall, bits);
        else
            printf("frame %" PRIu64 " %" PRIu64 "\n", f, last_fall);
        /* The inter-frame gap counts from the last bit slot, as a reader's does. */
        next += frame_gap;
    }

    close(fd[0]);
    close(fd[1]);
    return 0;
}
