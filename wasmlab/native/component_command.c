/* A component command in C: see component_command.h. */
#include "component_command.h"

#include "failures.h"
#include "request_loop.h"

int component_call_failed(Driver *d, wasmtime_error_t *err, const char *prefix, int64_t *detail) {
    int status = 0;
    if (d->api->wasmtime_error_exit_status(err, &status)) {
        d->api->wasmtime_error_delete(err);
        *detail = status;
        return OUT_EXIT;
    }
    (void)driver_drop_error(d, err, prefix);
    *detail = -1;
    return OUT_TRAP;
}

int component_command_judge(Driver *d, WasiSpec *wasi, const wasmtime_component_val_t *result, int returns, int outcome,
                            int64_t *detail) {
    if (outcome == OUT_OK && returns && result->kind == CVAL_RESULT && !result->of.result.is_ok) {
        outcome = OUT_EXIT; /* run returned err: exit status 1, as `wasmtime run` reports it */
        *detail = 1;
    }
    return judge_exit(d, wasi, outcome, detail);
}
