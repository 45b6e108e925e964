/* The driver's clock: CLOCK_MONOTONIC, the clock of Python's time.perf_counter_ns on Linux.  Inline: it is read several
 * times per request. */
#ifndef WASMLAB_CLOCK_H
#define WASMLAB_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

#endif
