/*
 * A component command in C (issue 25): a component exporting wasi:cli/run, run with the WASI context of a core command
 * (the same WasiSpec: argv, environment, stdio files, directories, wasi.c) and ended by an exit status, checked as a core
 * command's (judge_exit; its outputs are checked by the block loop, outside the request's time, and with instance reuse
 * a kept instance's compared as a core command's, what they gained per request): run's result ok is status 0 and err status 1, and wasi:cli/exit's status comes back as an error
 * holding it (wasmtime_error_exit_status), as proc_exit's does for a core module.  Kept apart from the component loop,
 * which calls these two functions only.
 */
#ifndef WASMLAB_COMPONENT_COMMAND_H
#define WASMLAB_COMPONENT_COMMAND_H

#include "component_api.h"
#include "driver.h"

/* A component call that failed with `err`: OUT_EXIT with the status in *detail when it is a WASI exit, else OUT_TRAP
 * (the component C API returns a guest's trap as an error; its message kept after `prefix`) with *detail -1.  The error
 * is deleted. */
int component_call_failed(Driver *d, wasmtime_error_t *err, const char *prefix, int64_t *detail);

/* A command request's end: run's `result` (when `returns`) read as an exit status (err: OUT_EXIT with status 1), then the
 * status judged as a core command's against `wasi` (its outputs are checked after the request's time, as a core one's).  The result is only read, never freed here. */
int component_command_judge(Driver *d, WasiSpec *wasi, const wasmtime_component_val_t *result, int returns, int outcome,
                            int64_t *detail);

#endif
