/*
 * A request's failure paths, shared by the request loop, the recipe programs and the component loop: the block's first
 * message kept, an error's kind read from wasmtime's message (as outcomes.failure_kind reads it in Python), a trap's code.
 */
#ifndef WASMLAB_FAILURES_H
#define WASMLAB_FAILURES_H

#include "driver.h"

/* What kind of failure wasmtime's message names (ERROR_*): a pool with no free slot ("maximum concurrent limit of 4 for core
 * instances reached"), a memory limit, or another error.  The one place these words are read: Python's
 * outcomes.failure_kind asks it through _native.error_kind_of. */
int message_kind(const char *data, size_t size);
/* A message kept if it is the block's first. */
void driver_remember_text(Driver *d, const char *text);
/* Keeps the error's message (if first), deletes the error, and returns its kind (ERROR_*). */
int driver_drop_error(Driver *d, wasmtime_error_t *err, const char *prefix);
/* Keeps the trap's message (if first), its code into *code (-1 none), and deletes it. */
void driver_drop_trap(Driver *d, wasm_trap_t *trap, int64_t *code);
/* The error's kind (ERROR_*); its message kept if the block's first and `keep`; the error is not deleted. */
int driver_error_kind(Driver *d, wasmtime_error_t *err, const char *prefix, int keep);

/* The `wait` policy's step, for the core and the component loops alike: when `*err` says the pool had no free slot and the
 * budget (d->wait_ns from `began`) is not spent, the error is deleted, the wait counted once per request (`*waited`),
 * 20 µs slept, and 1 returned: instantiate again.  Otherwise 0, `*err` left as it is. */
int driver_slot_retry(Driver *d, wasmtime_error_t **err, int64_t began, int *waited);

#endif
