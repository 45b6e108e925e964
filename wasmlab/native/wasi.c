/* A WASI guest's context per request and the check of its outputs: see wasi.h. */
#include "wasi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directories.h"
#include "outcomes.h"

void free_strings(char **list) {
    if (list == NULL)
        return;
    for (char **item = list; *item != NULL; item++) free(*item);
    free(list);
}

void wasi_free(WasiSpec *w) {
    if (w == NULL)
        return;
    char **lists[] = {w->argv, w->env_names, w->env_values, w->hosts, w->guests, w->wfolders, w->wsources, w->wguests};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) free_strings(lists[i]);
    free(w->stdin_path); free(w->stdout_path); free(w->stderr_path);
    for (int k = 0; k < OUTPUTS; k++) free(w->first_out[k]);
    free(w);
}

/* argv, environment and stdio into a new config: it, or NULL (nothing left behind). */
static wasi_config_t *config_of(const Api *api, const WasiSpec *spec) {
    wasi_config_t *config = api->wasi_config_new();
    if (!api->wasi_config_set_argv(config, (size_t)spec->argc, (const char **)spec->argv) ||
        (spec->envc && !api->wasi_config_set_env(config, (size_t)spec->envc, (const char **)spec->env_names,
                                                 (const char **)spec->env_values)) ||
        (spec->stdin_path && !api->wasi_config_set_stdin_file(config, spec->stdin_path)) ||
        !api->wasi_config_set_stdout_file(config, spec->stdout_path) || !api->wasi_config_set_stderr_file(config, spec->stderr_path)) {
        api->wasi_config_delete(config);
        return NULL;
    }
    return config;
}

int wasi_context_set(const Api *api, const WasiSpec *spec, wasmtime_context_t *context, char *problem, size_t size) {
    for (int i = 0; i < spec->nwritable; i++) {
        if (fresh_dir(spec->wfolders[i], spec->wsources[i]) != 0) {
            snprintf(problem, size, "the writable directory %s could not be made fresh%s%s: %s", spec->wguests[i],
                     spec->wsources[i][0] ? " from " : "", spec->wsources[i], strerror(errno));
            return -1;
        }
    }
    wasi_config_t *config = config_of(api, spec);
    if (config == NULL) {
        snprintf(problem, size, "the WASI context could not be built (argv, environment, or a stdio file)");
        return -1;
    }
    for (int i = 0; i < spec->npreopens + spec->nwritable; i++) {
        int writable = i >= spec->npreopens;
        const char *host = writable ? spec->wfolders[i - spec->npreopens] : spec->hosts[i];
        const char *guest = writable ? spec->wguests[i - spec->npreopens] : spec->guests[i];
        if (!api->wasi_config_preopen_dir(config, host, guest, writable)) {
            api->wasi_config_delete(config);
            snprintf(problem, size, "the directory %s could not be preopened at %s", host, guest);
            return -1;
        }
    }
    wasmtime_error_t *err = api->wasmtime_context_set_wasi(context, config);
    if (err != NULL) {
        api->wasmtime_error_delete(err);
        snprintf(problem, size, "wasmtime_context_set_wasi failed");
        return -1;
    }
    return 0;
}

/* Output k of the request that just ended into *data and *len: 0, or -1 (the written files unreadable, said in `message`). */
static int output_of(const WasiSpec *spec, int k, uint8_t **data, size_t *len, char *message, size_t size) {
    if (k != OUT_FILES) {
        *data = read_file(k == OUT_STDOUT ? spec->stdout_path : spec->stderr_path, len);
        return 0;
    }
    Buffer listing = {0};
    for (int i = 0; i < spec->nwritable; i++) {
        if (snapshot_dir(&listing, spec->wfolders[i], spec->wguests[i]) != 0) {
            snprintf(message, size, "what the request wrote under %s could not be read back: %s", spec->wguests[i], strerror(errno));
            free(listing.data);
            return -1;
        }
    }
    *data = listing.data;
    *len = listing.len;
    return 0;
}

int wasi_compare_output(WasiSpec *spec, int *differed, char *message, size_t size) {
    int reused = differed != NULL && spec->learned;
    for (int k = 0; k < OUTPUTS; k++) {
        size_t len = 0;
        uint8_t *data = NULL;
        if (output_of(spec, k, &data, &len, message, size) != 0)
            return OUT_ERROR;
        if (k != OUT_FILES) { /* a fresh instance's stdio files start empty; a kept one's grow by each request's output */
            size_t start = reused && spec->ended[k] <= len ? spec->ended[k] : 0;
            spec->ended[k] = len;
            if (start > 0)
                memmove(data, data + start, len - start);
            len -= start;
        }
        if (!spec->learned) {
            free(spec->first_out[k]);
            spec->first_out[k] = data;
            spec->first_len[k] = len;
            continue;
        }
        int same = len == spec->first_len[k] && (len == 0 || memcmp(data, spec->first_out[k], len) == 0);
        if (!same && reused) {
            *differed = 1;
            same = 1;
        }
        if (!same && k == OUT_FILES)
            describe_difference(data, len, spec->first_out[k], spec->first_len[k], message, size);
        else if (!same)
            snprintf(message, size, "the %s (%zu bytes) differs from the first request's (%zu bytes)",
                     k == OUT_STDOUT ? "stdout" : "stderr", len, spec->first_len[k]);
        free(data);
        if (!same)
            return OUT_MISMATCH;
    }
    spec->learned = 1;
    return OUT_OK;
}
