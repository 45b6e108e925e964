/*
 * Instance reuse (a variant's +reuseN, Driver.reuse > 1): one instance, with its store, serves `reuse` requests of its
 * workload in a row.  Core modules, recipes, WASI commands and modules importing host functions alike: the kept instance
 * is made as a fresh request makes its own (store_ready: limits, WASI context with fresh writable directories; the
 * driver's linker for WASI or host imports), and then called as many times.
 */
#ifndef WASMLAB_REUSE_LOOP_H
#define WASMLAB_REUSE_LOOP_H

#include "driver.h"

/* One request on the workload's kept instance (a fresh one made first when there is none): its outcome, its detail
 * and, after a trap, the guest's memory size; *fresh whether its instance was made for it, *carried whether it carried
 * state over (see reuse_loop.c). */
int serve_reused(Driver *d, Workload *w, int64_t *detail, int64_t *memory_bytes, int64_t *fresh, int64_t *carried);

#endif
