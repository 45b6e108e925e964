/*
 * A new store made ready for a request: its limits, fuel, epoch deadline and WASI context.  Inline in a header so the
 * request loop's hot path stays one translation unit as the compiler sees it, and the component loop gets the same set-up.
 */
#ifndef WASMLAB_STORE_SETUP_H
#define WASMLAB_STORE_SETUP_H

#include <limits.h>

#include "driver.h"
#include "failures.h"

/* The new store's limits, fuel, epoch deadline and WASI context (with fresh writable directories, as on the lean path):
 * OUT_OK or OUT_ERROR. */
static inline int store_ready(Driver *d, const Workload *w, wasmtime_store_t *store, wasmtime_context_t *context, int64_t *detail) {
    const Api *api = d->api;
    if (d->limited)
        api->wasmtime_store_limiter(store, d->limiter[0], d->limiter[1], d->limiter[2], d->limiter[3], d->limiter[4]);
    if (d->fuel >= 0) {
        wasmtime_error_t *err = api->wasmtime_context_set_fuel(context, (uint64_t)d->fuel);
        if (err != NULL) {
            *detail = driver_drop_error(d, err, "WasmtimeError: ");
            return OUT_ERROR;
        }
    }
    if (d->epoch_ticks)
        api->wasmtime_context_set_epoch_deadline(context, d->epoch_ticks);
    if (w->wasi != NULL) {
        char problem[PATH_MAX + 160];
        if (wasi_context_set(api, w->wasi, context, problem, sizeof problem) != 0) {
            driver_remember_text(d, problem);
            return OUT_ERROR;
        }
    }
    return OUT_OK;
}

#endif
