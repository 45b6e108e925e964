/* A request's failure paths: see failures.h. */
#define _GNU_SOURCE /* memmem */
#include "failures.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static void remember_bytes(Driver *d, const char *prefix, wasm_byte_vec_t *message) {
    if (d->has_message)
        return;
    int length = (int)(message->size < MESSAGE_BYTES - 64 ? message->size : MESSAGE_BYTES - 64);
    snprintf(d->first_message, MESSAGE_BYTES, "%s%.*s", prefix, length, message->data ? message->data : "");
    d->has_message = 1;
}

void driver_remember_text(Driver *d, const char *text) {
    if (d->has_message)
        return;
    snprintf(d->first_message, MESSAGE_BYTES, "%.*s", MESSAGE_BYTES - 1, text);
    d->has_message = 1;
}

static int contains(const char *data, size_t size, const char *text) {
    return data != NULL && memmem(data, size, text, strlen(text)) != NULL;
}

int message_kind(const char *data, size_t size) {
    if (contains(data, size, "maximum concurrent limit"))
        return ERROR_POOL_EXHAUSTED;
    if (contains(data, size, "memory") && (contains(data, size, "limit") || contains(data, size, "exceeds")))
        return ERROR_MEMORY_LIMIT;
    return ERROR_OTHER;
}

int driver_error_kind(Driver *d, wasmtime_error_t *err, const char *prefix, int keep) {
    const Api *api = d->api;
    wasm_byte_vec_t message = {0, NULL};
    api->wasmtime_error_message(err, &message);
    int kind = message_kind(message.data, message.size);
    if (keep)
        remember_bytes(d, prefix, &message);
    api->wasm_byte_vec_delete(&message);
    return kind;
}

int driver_drop_error(Driver *d, wasmtime_error_t *err, const char *prefix) {
    int kind = driver_error_kind(d, err, prefix, 1);
    d->api->wasmtime_error_delete(err);
    return kind;
}

void driver_drop_trap(Driver *d, wasm_trap_t *trap, int64_t *code) {
    const Api *api = d->api;
    uint32_t value = 0; /* wasmtime_trap_code_t is a uint8_t; a wider slot costs nothing and fears no older release */
    *code = api->wasmtime_trap_code(trap, (uint8_t *)&value) ? (int64_t)(value & 0xff) : -1;
    wasm_byte_vec_t message = {0, NULL};
    api->wasm_trap_message(trap, &message);
    remember_bytes(d, "Trap: ", &message);
    api->wasm_byte_vec_delete(&message);
    api->wasm_trap_delete(trap);
}

int driver_slot_retry(Driver *d, wasmtime_error_t **err, int64_t began, int *waited) {
    if (*err == NULL || driver_error_kind(d, *err, "", 0) != ERROR_POOL_EXHAUSTED || now_ns() - began >= d->wait_ns)
        return 0;
    d->api->wasmtime_error_delete(*err);
    *err = NULL;
    if (!*waited) { d->waits++; *waited = 1; }
    struct timespec pause = {0, 20000};
    nanosleep(&pause, NULL);
    return 1;
}
