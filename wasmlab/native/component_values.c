/* Component value trees: see component_values.h. */
#include "component_values.h"

#include <stdlib.h>
#include <string.h>

static void free_name(wasm_byte_vec_t *name) {
    free(name->data);
}

static void free_payload(wasmtime_component_val_t *inner) {
    if (inner != NULL) {
        cvalue_free(inner);
        free(inner);
    }
}

void cvalue_free(wasmtime_component_val_t *v) {
    switch (v->kind) {
    case CVAL_STRING: case CVAL_ENUM: free_name(&v->of.string); break;
    case CVAL_LIST: case CVAL_TUPLE:
        for (size_t i = 0; i < v->of.list.size; i++) cvalue_free(&v->of.list.data[i]);
        free(v->of.list.data);
        break;
    case CVAL_RECORD:
        for (size_t i = 0; i < v->of.record.size; i++) {
            free_name(&v->of.record.data[i].name);
            cvalue_free(&v->of.record.data[i].val);
        }
        free(v->of.record.data);
        break;
    case CVAL_FLAGS:
        for (size_t i = 0; i < v->of.flags.size; i++) free_name(&v->of.flags.data[i]);
        free(v->of.flags.data);
        break;
    case CVAL_VARIANT:
        free_name(&v->of.variant.discriminant);
        free_payload(v->of.variant.val);
        break;
    case CVAL_OPTION: free_payload(v->of.option); break;
    case CVAL_RESULT: free_payload(v->of.result.val); break;
    default: break;
    }
    memset(v, 0, sizeof *v);
}

static int same_name(const wasm_byte_vec_t *a, const wasm_byte_vec_t *b) {
    return a->size == b->size && (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
}

static int same_optional(const wasmtime_component_val_t *a, const wasmtime_component_val_t *b) {
    if (a == NULL || b == NULL)
        return a == b;
    return cvalue_equal(a, b);
}

static int same_items(const wasmtime_component_val_t *a, const wasmtime_component_val_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!cvalue_equal(&a[i], &b[i])) return 0;
    return 1;
}

int cvalue_equal(const wasmtime_component_val_t *a, const wasmtime_component_val_t *b) {
    if (a->kind != b->kind)
        return 0;
    const wasmtime_component_valunion_t *x = &a->of, *y = &b->of;
    switch (a->kind) {
    case CVAL_BOOL: return x->boolean == y->boolean;
    case CVAL_S8: case CVAL_U8: return x->u8 == y->u8;
    case CVAL_S16: case CVAL_U16: return x->u16 == y->u16;
    case CVAL_S32: case CVAL_U32: case CVAL_CHAR: case CVAL_F32: return x->u32 == y->u32; /* floats by their bits */
    case CVAL_S64: case CVAL_U64: case CVAL_F64: return x->u64 == y->u64;
    case CVAL_STRING: case CVAL_ENUM: return same_name(&x->string, &y->string);
    case CVAL_LIST: case CVAL_TUPLE:
        return x->list.size == y->list.size && same_items(x->list.data, y->list.data, x->list.size);
    case CVAL_RECORD:
        if (x->record.size != y->record.size) return 0;
        for (size_t i = 0; i < x->record.size; i++)
            if (!same_name(&x->record.data[i].name, &y->record.data[i].name) ||
                !cvalue_equal(&x->record.data[i].val, &y->record.data[i].val)) return 0;
        return 1;
    case CVAL_FLAGS:
        if (x->flags.size != y->flags.size) return 0;
        for (size_t i = 0; i < x->flags.size; i++)
            if (!same_name(&x->flags.data[i], &y->flags.data[i])) return 0;
        return 1;
    case CVAL_VARIANT:
        return same_name(&x->variant.discriminant, &y->variant.discriminant) && same_optional(x->variant.val, y->variant.val);
    case CVAL_OPTION: return same_optional(x->option, y->option);
    case CVAL_RESULT: return x->result.is_ok == y->result.is_ok && same_optional(x->result.val, y->result.val);
    default: return 0; /* resources and maps are not compared: never equal */
    }
}
