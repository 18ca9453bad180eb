/*
 * test_abi.c — drives libCompeftC.so through include/compeft.h, the way a C program would.
 *
 * Built and run by Tests/CompeftCTests/CABITests.swift:
 *
 *     cc -std=c99 -Wall -Wextra -Werror -pedantic -I include Tests/c/test_abi.c \
 *        -L LIBDIR -lCompeftC -Wl,-rpath,LIBDIR -lpthread -lm -o test_abi
 *     ./test_abi WORKDIR
 *
 * WORKDIR (made by the Swift test) holds:
 *   residual.cpeft          Fixtures/files/residual.safetensors compressed (F32, F16, BF16, F64, I64, rank 0, empty)
 *   residual.expected.f32   every float tensor decoded by the Swift API, in index order, concatenated
 *   residual.expected.f16   the same as F16
 *   residual.expected.bf16  the same as BF16
 *   lora.cpeft              Fixtures/files/lora-bert-seqcls compressed (a PEFT adapter with exact tensors)
 *   lora.adapter_config.json  the fixture's adapter_config.json
 *   ia3-f16.cpeft           Fixtures/files/ia3-gpt2-f16 compressed (init-one residuals)
 *   full-ft.cpeft           Fixtures/files/full-ft compressed against tiny-bert (init-base residuals)
 *   rank9.cpeft             a residual file with a rank-9 tensor "deep"
 *   corrupt-payload.cpeft   residual.cpeft with a byte of tensor "layers.10.w"'s payload flipped
 *   truncated.cpeft         the first half of residual.cpeft
 *   newer-version.cpeft     residual.cpeft claiming format version 2.0
 *   empty.cpeft             zero bytes
 *   not-a-container.bin     a safetensors file
 *   residual.safetensors    Fixtures/files/residual.safetensors (an input for compeft_compress)
 *   residual.step_counter   the raw little-endian bytes of its I64 tensor "step_counter"
 *   lora-input/             Fixtures/files/lora-bert-seqcls (a PEFT adapter folder)
 *   lora-b.cpeft            the same adapter compressed at density 30 (a second expert for merge)
 *   crash.h5                Fixtures/files/formats/crash_continuation_length_2.h5 (libhdf5 crashes on it)
 *   keras.h5                Fixtures/files/formats/keras.weights.h5
 *
 * Prints one line per failed check and "test_abi: N checks, F failed"; exits 0 only when F is 0.
 */
#define _POSIX_C_SOURCE 200809L

#include "compeft.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The ABI promises a 128-byte descriptor with no padding (Python's ctypes mirrors it). */
typedef char descriptor_is_128_bytes[(sizeof(compeft_tensor_desc) == 128) ? 1 : -1];
typedef char shape_is_at_offset_32[(offsetof(compeft_tensor_desc, shape) == 32) ? 1 : -1];

static const char *workdir;
static long checks;
static long failures;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static void check_at(int ok, const char *expr, const char *file, int line) {
    pthread_mutex_lock(&report_lock);
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", file, line, expr, compeft_last_error());
    }
    pthread_mutex_unlock(&report_lock);
}
#define CHECK(expr) check_at((expr) ? 1 : 0, #expr, __FILE__, __LINE__)

/* A status check that prints both names when it fails. */
static void expect_status_at(compeft_status got, compeft_status want, const char *expr, const char *file, int line) {
    pthread_mutex_lock(&report_lock);
    checks++;
    if (got != want) {
        failures++;
        fprintf(stderr, "FAIL %s:%d: %s returned %s, expected %s (last error: %s)\n", file, line, expr,
                compeft_status_name(got), compeft_status_name(want), compeft_last_error());
    }
    pthread_mutex_unlock(&report_lock);
}
#define EXPECT(want, call) expect_status_at((call), (want), #call, __FILE__, __LINE__)

static int error_mentions(const char *text) { return strstr(compeft_last_error(), text) != NULL; }

static char *path_of(const char *name) {
    size_t n = strlen(workdir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", workdir, name);
    return p;
}

/* Reads a whole file; *size receives its length. */
static unsigned char *read_file(const char *name, size_t *size) {
    char *path = path_of(name);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc((size_t)n + 1);
    size_t got = fread(bytes, 1, (size_t)n, f);
    fclose(f);
    bytes[got] = 0;
    *size = got;
    return bytes;
}

static compeft_handle open_fixture(const char *name) {
    char *path = path_of(name);
    compeft_handle h = COMPEFT_NULL_HANDLE;
    compeft_status s = compeft_open(path, &h);
    if (s != COMPEFT_OK) {
        fprintf(stderr, "FAIL: cannot open %s: %s: %s\n", path, compeft_status_name(s), compeft_last_error());
        exit(1);
    }
    free(path);
    return h;
}

static size_t dtype_size(compeft_dtype d) { return d == COMPEFT_DTYPE_F32 ? 4 : 2; }

static int is_float(compeft_dtype d) {
    return d == COMPEFT_DTYPE_F32 || d == COMPEFT_DTYPE_F16 || d == COMPEFT_DTYPE_BF16 || d == COMPEFT_DTYPE_F64;
}

static size_t find(compeft_handle h, const char *name) {
    size_t index = (size_t)-1;
    EXPECT(COMPEFT_OK, compeft_find_tensor(h, name, &index));
    return index;
}

static compeft_tensor_desc describe(compeft_handle h, size_t index) {
    compeft_tensor_desc d;
    memset(&d, 0, sizeof d);
    EXPECT(COMPEFT_OK, compeft_tensor_info(h, index, &d));
    return d;
}

/* ---- version, status names, last error -------------------------------------------------------- */

static void test_version_and_names(void) {
    CHECK(compeft_abi_version() == COMPEFT_ABI_VERSION);
    CHECK(compeft_version() != NULL && strlen(compeft_version()) > 0);
    CHECK(strcmp(compeft_last_error(), "") == 0);
    CHECK(strcmp(compeft_status_name(COMPEFT_OK), "COMPEFT_OK") == 0);
    CHECK(strcmp(compeft_status_name(COMPEFT_ERR_INVALID_ARGUMENT), "COMPEFT_ERR_INVALID_ARGUMENT") == 0);
    CHECK(strcmp(compeft_status_name(COMPEFT_ERR_BAD_HANDLE), "COMPEFT_ERR_BAD_HANDLE") == 0);
    CHECK(strcmp(compeft_status_name(COMPEFT_ERR_NOT_FOUND), "COMPEFT_ERR_NOT_FOUND") == 0);
    CHECK(strcmp(compeft_status_name(COMPEFT_ERR_BUFFER_TOO_SMALL), "COMPEFT_ERR_BUFFER_TOO_SMALL") == 0);
    CHECK(strcmp(compeft_status_name(COMPEFT_ERR_CORRUPT), "COMPEFT_ERR_CORRUPT") == 0);
    CHECK(strcmp(compeft_status_name(COMPEFT_ERR_UNSUPPORTED), "COMPEFT_ERR_UNSUPPORTED") == 0);
    CHECK(strcmp(compeft_status_name(COMPEFT_ERR_IO), "COMPEFT_ERR_IO") == 0);
    CHECK(strcmp(compeft_status_name(99), "COMPEFT_UNKNOWN_STATUS") == 0);
    CHECK(strcmp(compeft_status_name(-1), "COMPEFT_UNKNOWN_STATUS") == 0);
}

/* ---- open ------------------------------------------------------------------------------------- */

static void test_open_errors(void) {
    compeft_handle h = 42;
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_open(NULL, &h));
    CHECK(h == COMPEFT_NULL_HANDLE);
    CHECK(error_mentions("path is NULL"));
    char *path = path_of("residual.cpeft");
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_open(path, NULL));
    free(path);
    h = 42;
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_open("", &h));
    CHECK(h == COMPEFT_NULL_HANDLE);

    path = path_of("missing.cpeft");
    h = 42;
    EXPECT(COMPEFT_ERR_IO, compeft_open(path, &h));
    CHECK(h == COMPEFT_NULL_HANDLE);
    CHECK(error_mentions("missing.cpeft"));
    free(path);
    EXPECT(COMPEFT_ERR_IO, compeft_open(workdir, &h));           /* a directory */
    /* "-" is a file name here, not standard input (which is /dev/null: reading it would say CORRUPT). */
    EXPECT(COMPEFT_ERR_IO, compeft_open("-", &h));

    path = path_of("not-a-container.bin");
    EXPECT(COMPEFT_ERR_CORRUPT, compeft_open(path, &h));
    CHECK(error_mentions("not a compeft container"));
    free(path);
    path = path_of("empty.cpeft");
    EXPECT(COMPEFT_ERR_CORRUPT, compeft_open(path, &h));
    free(path);
    path = path_of("truncated.cpeft");
    EXPECT(COMPEFT_ERR_CORRUPT, compeft_open(path, &h));
    CHECK(h == COMPEFT_NULL_HANDLE);
    free(path);
    path = path_of("newer-version.cpeft");
    EXPECT(COMPEFT_ERR_UNSUPPORTED, compeft_open(path, &h));
    CHECK(error_mentions("version 2.0"));
    free(path);
}

/* ---- handles ---------------------------------------------------------------------------------- */

static void expect_bad_handle_everywhere(compeft_handle h) {
    size_t n = 0, index = 0, needed = 0;
    compeft_tensor_desc d;
    float buffer[4] = {0, 0, 0, 0};
    char text[8];
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_tensor_count(h, &n));
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_tensor_info(h, 0, &d));
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_find_tensor(h, "layers.10.w", &index));
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_decode(h, 0, COMPEFT_DTYPE_F32, buffer, sizeof buffer));
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_apply(h, 0, COMPEFT_DTYPE_F32, buffer, sizeof buffer, 1.0f));
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_metadata_json(h, text, sizeof text, &needed));
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_adapter_config(h, text, sizeof text, &needed));
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_inspect_json(h, text, sizeof text, &needed));
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_exact_bytes(h, 0, buffer, sizeof buffer));
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_close(h));
    CHECK(error_mentions("not open"));
}

static void test_handles(void) {
    expect_bad_handle_everywhere(COMPEFT_NULL_HANDLE);
    expect_bad_handle_everywhere(1);
    expect_bad_handle_everywhere(0xDEADBEEFull);
    expect_bad_handle_everywhere(UINT64_MAX);

    compeft_handle h = open_fixture("residual.cpeft");
    CHECK(h != COMPEFT_NULL_HANDLE);
    size_t n = 0;
    EXPECT(COMPEFT_OK, compeft_tensor_count(h, &n));
    CHECK(n == 7);
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_tensor_count(h, NULL));
    expect_bad_handle_everywhere(h + 1);
    expect_bad_handle_everywhere(h ^ (1ull << 60));
    expect_bad_handle_everywhere(h & 0xFFFFFFFFull);

    EXPECT(COMPEFT_OK, compeft_close(h));
    expect_bad_handle_everywhere(h);                              /* stale, and a double close */

    /* Handles are never reused: a new open gets a new one, and the old one stays dead. */
    compeft_handle again = open_fixture("residual.cpeft");
    CHECK(again != h);
    EXPECT(COMPEFT_ERR_BAD_HANDLE, compeft_tensor_count(h, &n));
    EXPECT(COMPEFT_OK, compeft_tensor_count(again, &n));
    EXPECT(COMPEFT_OK, compeft_close(again));
}

/* ---- tensor info and find --------------------------------------------------------------------- */

static void test_info_and_find(void) {
    compeft_handle h = open_fixture("residual.cpeft");
    size_t n = 0;
    EXPECT(COMPEFT_OK, compeft_tensor_count(h, &n));
    for (size_t i = 0; i < n; i++) {
        compeft_tensor_desc d = describe(h, i);
        CHECK(d.name != NULL && d.file != NULL);
        CHECK(strcmp(d.file, "residual.safetensors") == 0);
        size_t back = (size_t)-1;
        EXPECT(COMPEFT_OK, compeft_find_tensor(h, d.name, &back));
        CHECK(back == i);
        if (i > 0) CHECK(strcmp(describe(h, i - 1).name, d.name) < 0); /* names sorted bytewise */
        int64_t product = 1;
        for (uint32_t k = 0; k < d.rank; k++) product *= d.shape[k];
        CHECK(product == d.count);
        for (uint32_t k = d.rank; k < COMPEFT_MAX_RANK; k++) CHECK(d.shape[k] == 0);
        CHECK(d.nonzero <= d.kept && d.kept <= d.count);
    }

    compeft_tensor_desc d = describe(h, find(h, "layers.10.w"));
    CHECK(d.dtype == COMPEFT_DTYPE_F32 && d.rank == 2 && d.shape[0] == 300 && d.shape[1] == 200 && d.count == 60000);
    CHECK(d.role == COMPEFT_ROLE_RESIDUAL && d.init == COMPEFT_INIT_ZERO && (d.encoding == 1 || d.encoding == 3));
    CHECK(d.scale > 0 && d.nonzero > 0);
    d = describe(h, find(h, "step_counter"));
    CHECK(d.dtype == COMPEFT_DTYPE_I64 && d.role == COMPEFT_ROLE_EXACT && d.count == 3 && d.encoding == 0);
    CHECK(d.scale == 0 && d.nonzero == 0 && d.kept == 3);
    d = describe(h, find(h, "layers.1.scale"));
    CHECK(d.rank == 0 && d.count == 1);
    d = describe(h, find(h, "layers.3.empty"));
    CHECK(d.rank == 2 && d.shape[0] == 0 && d.shape[1] == 8 && d.count == 0);
    CHECK(describe(h, find(h, "a.bias")).dtype == COMPEFT_DTYPE_BF16);
    CHECK(describe(h, find(h, "layers.2.w")).dtype == COMPEFT_DTYPE_F16);
    CHECK(describe(h, find(h, "B.proj")).dtype == COMPEFT_DTYPE_F64);

    size_t index = 12345;
    EXPECT(COMPEFT_ERR_NOT_FOUND, compeft_find_tensor(h, "no.such.tensor", &index));
    CHECK(index == 12345);
    CHECK(error_mentions("no.such.tensor"));
    EXPECT(COMPEFT_ERR_NOT_FOUND, compeft_find_tensor(h, "", &index));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_find_tensor(h, NULL, &index));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_find_tensor(h, "layers.10.w", NULL));

    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_tensor_info(h, n, &d));
    CHECK(error_mentions("out of range"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_tensor_info(h, (size_t)-1, &d));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_tensor_info(h, 0, NULL));
    EXPECT(COMPEFT_OK, compeft_close(h));

    /* A rank above COMPEFT_MAX_RANK: UNSUPPORTED, with the descriptor still filled. */
    h = open_fixture("rank9.cpeft");
    memset(&d, 0, sizeof d);
    EXPECT(COMPEFT_ERR_UNSUPPORTED, compeft_tensor_info(h, find(h, "deep"), &d));
    CHECK(error_mentions("rank 9"));
    CHECK(d.rank == 9 && d.count == 6 && d.shape[6] == 1 && d.shape[7] == 2);
    CHECK(d.name != NULL && strcmp(d.name, "deep") == 0);
    float deep[6];
    EXPECT(COMPEFT_OK, compeft_decode(h, find(h, "deep"), COMPEFT_DTYPE_F32, deep, sizeof deep));
    EXPECT(COMPEFT_OK, compeft_close(h));
}

/* ---- decode ----------------------------------------------------------------------------------- */

static void test_decode_matches_swift(void) {
    static const compeft_dtype types[3] = {COMPEFT_DTYPE_F32, COMPEFT_DTYPE_F16, COMPEFT_DTYPE_BF16};
    static const char *files[3] = {"residual.expected.f32", "residual.expected.f16", "residual.expected.bf16"};
    compeft_handle h = open_fixture("residual.cpeft");
    size_t n = 0;
    EXPECT(COMPEFT_OK, compeft_tensor_count(h, &n));
    for (int k = 0; k < 3; k++) {
        size_t size = 0;
        unsigned char *expected = read_file(files[k], &size);
        CHECK(expected != NULL);
        if (!expected) continue;
        size_t offset = 0;
        for (size_t i = 0; i < n; i++) {
            compeft_tensor_desc d = describe(h, i);
            if (!is_float(d.dtype)) continue;
            size_t bytes = (size_t)d.count * dtype_size(types[k]);
            /* One spare byte in front, so the decode also runs on a misaligned buffer. */
            unsigned char *buffer = malloc(bytes + 1);
            EXPECT(COMPEFT_OK, compeft_decode(h, i, types[k], buffer + 1, bytes));
            CHECK(offset + bytes <= size && memcmp(buffer + 1, expected + offset, bytes) == 0);
            offset += bytes;
            free(buffer);
        }
        CHECK(offset == size);
        free(expected);
    }
    EXPECT(COMPEFT_OK, compeft_close(h));
}

static void test_decode_errors(void) {
    compeft_handle h = open_fixture("residual.cpeft");
    size_t w = find(h, "layers.10.w");
    size_t needed = 60000 * 4;
    unsigned char *buffer = malloc(needed + 16);
    memset(buffer, 0xAB, needed + 16);

    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decode(h, w, 0, buffer, needed));
    CHECK(error_mentions("not a compeft_dtype code"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decode(h, w, 99, buffer, needed));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decode(h, w, -1, buffer, needed));
    EXPECT(COMPEFT_ERR_UNSUPPORTED, compeft_decode(h, w, COMPEFT_DTYPE_F64, buffer, needed));
    EXPECT(COMPEFT_ERR_UNSUPPORTED, compeft_decode(h, w, COMPEFT_DTYPE_I64, buffer, needed));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decode(h, w, COMPEFT_DTYPE_F32, NULL, needed));
    CHECK(error_mentions("NULL"));
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_decode(h, w, COMPEFT_DTYPE_F32, NULL, 0));
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_decode(h, w, COMPEFT_DTYPE_F32, buffer, needed - 1));
    CHECK(error_mentions("needs 240000"));
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_decode(h, w, COMPEFT_DTYPE_F16, buffer, needed / 2 - 1));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decode(h, w, COMPEFT_DTYPE_F32, buffer, (size_t)-1));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decode(h, 7, COMPEFT_DTYPE_F32, buffer, needed));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decode(h, (size_t)-1, COMPEFT_DTYPE_F32, buffer, needed));
    CHECK(buffer[0] == 0xAB && buffer[needed - 1] == 0xAB);     /* failed calls write nothing */

    /* A larger buffer is fine; the bytes past the tensor are untouched. */
    EXPECT(COMPEFT_OK, compeft_decode(h, w, COMPEFT_DTYPE_F32, buffer, needed + 16));
    CHECK(buffer[needed] == 0xAB && buffer[needed + 15] == 0xAB);

    /* A non-float tensor cannot be decoded; an empty one needs no buffer. */
    EXPECT(COMPEFT_ERR_UNSUPPORTED, compeft_decode(h, find(h, "step_counter"), COMPEFT_DTYPE_F32, buffer, needed));
    CHECK(error_mentions("step_counter") && error_mentions("I64"));
    EXPECT(COMPEFT_OK, compeft_decode(h, find(h, "layers.3.empty"), COMPEFT_DTYPE_F32, NULL, 0));
    EXPECT(COMPEFT_OK, compeft_decode(h, find(h, "layers.3.empty"), COMPEFT_DTYPE_BF16, buffer, 8));
    float scalar = 0;
    EXPECT(COMPEFT_OK, compeft_decode(h, find(h, "layers.1.scale"), COMPEFT_DTYPE_F32, &scalar, sizeof scalar));
    free(buffer);
    EXPECT(COMPEFT_OK, compeft_close(h));

    /* A damaged payload is CORRUPT and named; the other tensors still decode. */
    h = open_fixture("corrupt-payload.cpeft");
    buffer = malloc(needed);
    EXPECT(COMPEFT_ERR_CORRUPT, compeft_decode(h, find(h, "layers.10.w"), COMPEFT_DTYPE_F32, buffer, needed));
    CHECK(error_mentions("layers.10.w") && error_mentions("checksum"));
    EXPECT(COMPEFT_ERR_CORRUPT, compeft_apply(h, find(h, "layers.10.w"), COMPEFT_DTYPE_F32, buffer, needed, 1.0f));
    EXPECT(COMPEFT_OK, compeft_decode(h, find(h, "layers.2.w"), COMPEFT_DTYPE_F32, buffer, 64 * 48 * 4));
    free(buffer);
    EXPECT(COMPEFT_OK, compeft_close(h));
}

/* ---- apply ------------------------------------------------------------------------------------ */

static void test_apply(void) {
    /* (IA)³: init 1, so applying τ to ones gives the decoded vector, in every output type. */
    compeft_handle h = open_fixture("ia3-f16.cpeft");
    size_t n = 0;
    EXPECT(COMPEFT_OK, compeft_tensor_count(h, &n));
    CHECK(n == 4);
    for (size_t i = 0; i < n; i++) {
        compeft_tensor_desc d = describe(h, i);
        CHECK(d.role == COMPEFT_ROLE_RESIDUAL && d.init == COMPEFT_INIT_ONE && d.dtype == COMPEFT_DTYPE_F16);
        size_t count = (size_t)d.count;
        float *ones = malloc(count * 4), *decoded = malloc(count * 4);
        for (size_t j = 0; j < count; j++) ones[j] = 1.0f;
        EXPECT(COMPEFT_OK, compeft_apply(h, i, COMPEFT_DTYPE_F32, ones, count * 4, 1.0f));
        EXPECT(COMPEFT_OK, compeft_decode(h, i, COMPEFT_DTYPE_F32, decoded, count * 4));
        CHECK(memcmp(ones, decoded, count * 4) == 0);
        uint16_t *half_ones = malloc(count * 2), *half_decoded = malloc(count * 2);
        for (size_t j = 0; j < count; j++) half_ones[j] = 0x3C00;   /* 1.0 in F16 */
        EXPECT(COMPEFT_OK, compeft_apply(h, i, COMPEFT_DTYPE_F16, half_ones, count * 2, 1.0f));
        EXPECT(COMPEFT_OK, compeft_decode(h, i, COMPEFT_DTYPE_F16, half_decoded, count * 2));
        CHECK(memcmp(half_ones, half_decoded, count * 2) == 0);
        for (size_t j = 0; j < count; j++) half_ones[j] = 0x3F80;   /* 1.0 in BF16 */
        EXPECT(COMPEFT_OK, compeft_apply(h, i, COMPEFT_DTYPE_BF16, half_ones, count * 2, 1.0f));
        EXPECT(COMPEFT_OK, compeft_decode(h, i, COMPEFT_DTYPE_BF16, half_decoded, count * 2));
        CHECK(memcmp(half_ones, half_decoded, count * 2) == 0);
        free(ones);
        free(decoded);
        free(half_ones);
        free(half_decoded);
    }
    EXPECT(COMPEFT_OK, compeft_close(h));

    /* A full fine-tune: decode gives τ alone, apply adds factor × τ to any weights, aligned or not. */
    h = open_fixture("full-ft.cpeft");
    EXPECT(COMPEFT_OK, compeft_tensor_count(h, &n));
    CHECK(n == 41);
    size_t q = find(h, "bert.encoder.layer.0.attention.self.query.weight");
    compeft_tensor_desc d = describe(h, q);
    CHECK(d.init == COMPEFT_INIT_BASE && d.count == 64 * 64);
    size_t count = (size_t)d.count, bytes = count * 4;
    float *tau = malloc(bytes), *weights = malloc(bytes), *expected = malloc(bytes);
    unsigned char *misaligned = malloc(bytes + 1);
    EXPECT(COMPEFT_OK, compeft_decode(h, q, COMPEFT_DTYPE_F32, tau, bytes));
    for (size_t j = 0; j < count; j++) {
        weights[j] = (float)sin((double)j);
        expected[j] = weights[j] + (-0.5f * tau[j]);
    }
    memcpy(misaligned + 1, weights, bytes);
    EXPECT(COMPEFT_OK, compeft_apply(h, q, COMPEFT_DTYPE_F32, weights, bytes, -0.5f));
    CHECK(memcmp(weights, expected, bytes) == 0);
    EXPECT(COMPEFT_OK, compeft_apply(h, q, COMPEFT_DTYPE_F32, misaligned + 1, bytes, -0.5f));
    CHECK(memcmp(misaligned + 1, expected, bytes) == 0);

    /* Bad arguments leave the weights alone. */
    memcpy(expected, weights, bytes);
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_apply(h, q, COMPEFT_DTYPE_F32, weights, bytes, NAN));
    CHECK(error_mentions("not finite"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_apply(h, q, COMPEFT_DTYPE_F32, weights, bytes, INFINITY));
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_apply(h, q, COMPEFT_DTYPE_F32, weights, bytes - 4, 1.0f));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_apply(h, q, COMPEFT_DTYPE_F16, weights, bytes, 1.0f));
    CHECK(error_mentions("exactly 8192"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_apply(h, q, COMPEFT_DTYPE_F32, NULL, bytes, 1.0f));
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_apply(h, q, COMPEFT_DTYPE_F32, NULL, 0, 1.0f));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_apply(h, q, 77, weights, bytes, 1.0f));
    EXPECT(COMPEFT_ERR_UNSUPPORTED, compeft_apply(h, q, COMPEFT_DTYPE_F64, weights, bytes, 1.0f));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_apply(h, n, COMPEFT_DTYPE_F32, weights, bytes, 1.0f));
    CHECK(memcmp(weights, expected, bytes) == 0);
    free(tau);
    free(weights);
    free(expected);
    free(misaligned);
    EXPECT(COMPEFT_OK, compeft_close(h));

    /* An exact tensor (the classifier head) replaces the weights with factor 1 and refuses any other. */
    h = open_fixture("lora.cpeft");
    size_t head = find(h, "base_model.model.classifier.weight");
    d = describe(h, head);
    CHECK(d.role == COMPEFT_ROLE_EXACT && d.count == 3 * 64);
    float head_weights[3 * 64], head_decoded[3 * 64];
    memset(head_weights, 0, sizeof head_weights);
    EXPECT(COMPEFT_ERR_UNSUPPORTED, compeft_apply(h, head, COMPEFT_DTYPE_F32, head_weights, sizeof head_weights, 2.0f));
    CHECK(error_mentions("stored exactly"));
    EXPECT(COMPEFT_OK, compeft_apply(h, head, COMPEFT_DTYPE_F32, head_weights, sizeof head_weights, 1.0f));
    EXPECT(COMPEFT_OK, compeft_decode(h, head, COMPEFT_DTYPE_F32, head_decoded, sizeof head_decoded));
    CHECK(memcmp(head_weights, head_decoded, sizeof head_weights) == 0);
    EXPECT(COMPEFT_OK, compeft_close(h));
}

/* ---- metadata and adapter config -------------------------------------------------------------- */

static void test_metadata(void) {
    compeft_handle h = open_fixture("lora.cpeft");
    size_t needed = 0;
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_metadata_json(h, NULL, 0, &needed));
    CHECK(needed > 100);
    char *json = malloc(needed);
    memset(json, 'x', needed);
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_metadata_json(h, json, needed - 1, &needed));
    CHECK(json[0] == 'x');                                        /* nothing written */
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_metadata_json(h, NULL, needed, &needed));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_metadata_json(h, json, (size_t)-1, &needed));
    EXPECT(COMPEFT_OK, compeft_metadata_json(h, json, needed, &needed));
    CHECK(strlen(json) == needed - 1 && json[0] == '{' && json[needed - 2] == '}');
    CHECK(strstr(json, "\"peftType\":\"LORA\"") != NULL);
    CHECK(strstr(json, "\"tensors\":[") != NULL);
    CHECK(strstr(json, "base_model.model.classifier.weight") != NULL);
    EXPECT(COMPEFT_OK, compeft_metadata_json(h, json, needed, NULL)); /* out_needed is optional */
    free(json);

    size_t size = 0;
    unsigned char *original = read_file("lora.adapter_config.json", &size);
    CHECK(original != NULL);
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_adapter_config(h, NULL, 0, &needed));
    CHECK(needed == size + 1);
    char *config = malloc(needed);
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_adapter_config(h, config, 1, NULL));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_adapter_config(h, NULL, 3, &needed));
    EXPECT(COMPEFT_OK, compeft_adapter_config(h, config, needed, &needed));
    CHECK(original != NULL && memcmp(config, original, size) == 0 && config[size] == 0);
    free(config);
    free(original);
    EXPECT(COMPEFT_OK, compeft_close(h));

    h = open_fixture("residual.cpeft");
    char small[4];
    needed = 0;
    EXPECT(COMPEFT_ERR_NOT_FOUND, compeft_adapter_config(h, small, sizeof small, &needed));
    CHECK(error_mentions("adapter_config.json"));
    EXPECT(COMPEFT_OK, compeft_close(h));
}

/* ---- threads ---------------------------------------------------------------------------------- */

struct decode_job {
    compeft_handle handle;
    const unsigned char *expected;
    size_t expected_size;
    int rounds;
    long mismatches;
};

/* Decodes every float tensor `rounds` times from a shared handle and compares with the Swift decode. */
static void *decode_worker(void *arg) {
    struct decode_job *job = arg;
    size_t n = 0;
    if (compeft_tensor_count(job->handle, &n) != COMPEFT_OK) { job->mismatches++; return NULL; }
    for (int r = 0; r < job->rounds; r++) {
        size_t offset = 0;
        for (size_t i = 0; i < n; i++) {
            compeft_tensor_desc d;
            if (compeft_tensor_info(job->handle, i, &d) != COMPEFT_OK) { job->mismatches++; continue; }
            if (!is_float(d.dtype)) continue;
            size_t bytes = (size_t)d.count * 4;
            float *buffer = malloc(bytes + 4);
            if (compeft_decode(job->handle, i, COMPEFT_DTYPE_F32, buffer, bytes) != COMPEFT_OK
                || offset + bytes > job->expected_size || memcmp(buffer, job->expected + offset, bytes) != 0)
                job->mismatches++;
            offset += bytes;
            free(buffer);
        }
    }
    return NULL;
}

/* Opens and closes its own handles over and over while other threads decode. */
static void *churn_worker(void *arg) {
    long *problems = arg;
    char *path = path_of("lora.cpeft");
    for (int r = 0; r < 40; r++) {
        compeft_handle h = COMPEFT_NULL_HANDLE;
        size_t n = 0;
        if (compeft_open(path, &h) != COMPEFT_OK) { (*problems)++; continue; }
        if (compeft_tensor_count(h, &n) != COMPEFT_OK || n != 10) (*problems)++;
        if (compeft_close(h) != COMPEFT_OK) (*problems)++;
        if (compeft_close(h) != COMPEFT_ERR_BAD_HANDLE) (*problems)++;
    }
    free(path);
    return NULL;
}

struct race_job {
    compeft_handle handle;
    size_t index;
    long ok, bad_handle, other;
};

/* Decodes until the handle is closed under it: every call is OK or BAD_HANDLE, never anything else. */
static void *race_worker(void *arg) {
    struct race_job *job = arg;
    float buffer[64 * 48];
    for (long r = 0; r < 1000000; r++) {
        compeft_tensor_desc d;
        compeft_status s = compeft_tensor_info(job->handle, job->index, &d);
        if (s == COMPEFT_OK) s = compeft_decode(job->handle, job->index, COMPEFT_DTYPE_F32, buffer, sizeof buffer);
        if (s == COMPEFT_OK) job->ok++;
        else if (s == COMPEFT_ERR_BAD_HANDLE) { job->bad_handle++; break; }
        else { job->other++; break; }
    }
    return NULL;
}

struct message_job {
    const char *missing;
    int same;
};

/* Fails with its own message and checks that another thread's failure did not replace it. */
static void *message_worker(void *arg) {
    struct message_job *job = arg;
    job->same = strcmp(compeft_last_error(), "") == 0;          /* a new thread starts with "" */
    compeft_handle h;
    compeft_open(job->missing, &h);
    char *mine = strdup(compeft_last_error());
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    size_t n;
    compeft_tensor_count(COMPEFT_NULL_HANDLE + 0, &n);           /* fails on the other thread too */
    job->same = job->same && strstr(mine, job->missing) != NULL
                && strstr(compeft_last_error(), "not open") != NULL;
    free(mine);
    return NULL;
}

static void test_threads(void) {
    size_t size = 0;
    unsigned char *expected = read_file("residual.expected.f32", &size);
    CHECK(expected != NULL);
    if (!expected) return;
    compeft_handle h = open_fixture("residual.cpeft");
    enum { decoders = 8, churners = 2 };
    pthread_t threads[decoders + churners];
    struct decode_job jobs[decoders];
    long churn_problems[churners] = {0, 0};
    for (int i = 0; i < decoders; i++) {
        jobs[i] = (struct decode_job){h, expected, size, 5, 0};
        CHECK(pthread_create(&threads[i], NULL, decode_worker, &jobs[i]) == 0);
    }
    for (int i = 0; i < churners; i++)
        CHECK(pthread_create(&threads[decoders + i], NULL, churn_worker, &churn_problems[i]) == 0);
    for (int i = 0; i < decoders + churners; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < decoders; i++) CHECK(jobs[i].mismatches == 0);
    for (int i = 0; i < churners; i++) CHECK(churn_problems[i] == 0);
    EXPECT(COMPEFT_OK, compeft_close(h));
    free(expected);

    /* Closing a handle while other threads use it. */
    h = open_fixture("residual.cpeft");
    size_t target = find(h, "layers.2.w");                       /* 64 × 48 values */
    enum { racers = 4 };
    pthread_t racing[racers];
    struct race_job races[racers];
    for (int i = 0; i < racers; i++) {
        races[i] = (struct race_job){h, target, 0, 0, 0};
        CHECK(pthread_create(&racing[i], NULL, race_worker, &races[i]) == 0);
    }
    struct timespec pause = {0, 30 * 1000 * 1000};
    nanosleep(&pause, NULL);
    EXPECT(COMPEFT_OK, compeft_close(h));
    for (int i = 0; i < racers; i++) {
        pthread_join(racing[i], NULL);
        CHECK(races[i].other == 0 && races[i].bad_handle == 1);
    }

    /* The last error is per thread. */
    char *missing_a = path_of("missing-a.cpeft"), *missing_b = path_of("missing-b.cpeft");
    struct message_job a = {missing_a, 0}, b = {missing_b, 0};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, message_worker, &a) == 0);
    CHECK(pthread_create(&tb, NULL, message_worker, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.same && b.same);
    free(missing_a);
    free(missing_b);
}

/* ---- writing and checking (ABI version 2) --------------------------------------------------------- */

static int file_exists(const char *name) {
    char *path = path_of(name);
    FILE *f = fopen(path, "rb");
    free(path);
    if (f) fclose(f);
    return f != NULL;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    unsigned char *x = read_file(a, &na), *y = read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* compeft_compress with workdir-relative paths; the report (if any) is checked and freed. */
static compeft_status compress_names(const char *input, const char *output, const char *options, char **report) {
    char *in = path_of(input), *out = path_of(output);
    compeft_status s = compeft_compress(in, out, options, report);
    free(in);
    free(out);
    return s;
}

static void test_compress(void) {
    char *report = (char *)"untouched";
    char *in = path_of("residual.safetensors"), *out = path_of("written.cpeft");

    /* Arguments: every failure sets the report to NULL and writes nothing. */
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(NULL, out, NULL, &report));
    CHECK(report == NULL && error_mentions("input is NULL"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, NULL, NULL, &report));
    CHECK(error_mentions("output is NULL"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress("", out, NULL, &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, "-", NULL, &report));
    CHECK(error_mentions("standard input or output"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress("-", out, NULL, &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"density\": 10", &report));
    CHECK(error_mentions("JSON object"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "[10]", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "10", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"densty\": 10}", &report));
    CHECK(error_mentions("unknown option 'densty'") && error_mentions("density"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"density\": \"10\"}", &report));
    CHECK(error_mentions("'density' must be a finite number"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"density\": 0}", &report));
    CHECK(error_mentions("density"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"density\": 100.5}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"density\": 1e999}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"alpha\": -1}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"alpha\": \"big\"}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"method\": \"zip\"}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"scope\": \"layer\"}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"init\": \"base\"}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"threads\": 0}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"threads\": 1.5}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"zstd_level\": 23}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_compress(in, out, "{\"force\": 1}", &report));
    CHECK(error_mentions("true or false"));
    EXPECT(COMPEFT_ERR_IO, compress_names("missing.safetensors", "written.cpeft", NULL, &report));
    CHECK(error_mentions("missing.safetensors"));
    EXPECT(COMPEFT_ERR_CORRUPT, compress_names("empty.cpeft", "written.cpeft", NULL, &report));
    EXPECT(COMPEFT_ERR_IO, compeft_compress(in, in, "{\"force\": true}", &report));
    CHECK(error_mentions("overwrite the input"));
    CHECK(report == NULL && !file_exists("written.cpeft"));
    /* libhdf5 crashes on crash.h5: in the library's helper process, so here it is an error and this process
       goes on (and reads the next HDF5 file). */
    EXPECT(COMPEFT_ERR_CORRUPT, compress_names("crash.h5", "written.cpeft", NULL, &report));
    CHECK(error_mentions("crash.h5") && error_mentions("libhdf5 crashed reading this file (signal 11"));
    CHECK(report == NULL && !file_exists("written.cpeft"));
    EXPECT(COMPEFT_OK, compress_names("keras.h5", "keras.cpeft", NULL, NULL));

    /* Success: the report is `compeft compress --json`, the container opens and verifies. */
    EXPECT(COMPEFT_OK, compeft_compress(in, out, "{\"density\": 10, \"zstd_level\": 3, \"threads\": 1}", &report));
    CHECK(report != NULL && report[0] == '{' && strstr(report, "\"output_bytes\":") != NULL);
    CHECK(report != NULL && strstr(report, "\"density\":10") != NULL && strstr(report, "\"input_kind\":\"residual\"") != NULL);
    compeft_string_free(report);
    compeft_string_free(NULL);
    compeft_handle h = open_fixture("written.cpeft");
    size_t n = 0;
    EXPECT(COMPEFT_OK, compeft_tensor_count(h, &n));
    CHECK(n == 7);
    EXPECT(COMPEFT_OK, compeft_close(h));

    /* An existing output needs "force"; the report is optional; the thread count never changes the bytes. */
    EXPECT(COMPEFT_ERR_IO, compeft_compress(in, out, "{\"density\": 10}", &report));
    CHECK(error_mentions("already exists") && report == NULL);
    EXPECT(COMPEFT_OK, compeft_compress(in, out, "{\"density\": 10, \"zstd_level\": 3, \"threads\": 2, \"force\": true}", NULL));
    EXPECT(COMPEFT_OK, compress_names("residual.safetensors", "written-1.cpeft", "{\"density\": 10, \"zstd_level\": 3, \"threads\": 1}", NULL));
    CHECK(same_file("written.cpeft", "written-1.cpeft"));
    /* "" and "{}" are no options; null values are absent ones. */
    EXPECT(COMPEFT_OK, compress_names("residual.safetensors", "defaults-a.cpeft", "", NULL));
    EXPECT(COMPEFT_OK, compress_names("residual.safetensors", "defaults-b.cpeft", "{\"base\": null, \"density\": 20}", NULL));
    CHECK(same_file("defaults-a.cpeft", "defaults-b.cpeft"));

    /* A PEFT folder keeps its adapter_config.json. */
    EXPECT(COMPEFT_OK, compress_names("lora-input", "lora-written.cpeft", "{\"density\": 10, \"alpha\": \"auto\"}", &report));
    CHECK(report != NULL && strstr(report, "\"input_kind\":\"peft-adapter\"") != NULL);
    compeft_string_free(report);
    free(in);
    free(out);
}

static void test_decompress(void) {
    char *report = (char *)"untouched";
    char *in = path_of("lora.cpeft"), *out = path_of("restored");
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decompress(NULL, out, NULL, &report));
    CHECK(report == NULL);
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decompress(in, "", NULL, &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decompress(in, out, "{\"dtype\": \"f64\"}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decompress(in, out, "{\"format\": \"npz\"}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decompress(in, out, "{\"density\": 10}", &report));
    CHECK(error_mentions("unknown option 'density'"));
    /* The output's name decides what is written; a format that disagrees with it, or a .cpeft name, is refused. */
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decompress(in, out, "{\"format\": \"hdf5\"}", &report));
    CHECK(error_mentions("format hdf5 disagrees with the output"));
    char *as_container = path_of("restored.cpeft");
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_decompress(in, as_container, NULL, &report));
    free(as_container);
    char *missing = path_of("missing.cpeft");
    EXPECT(COMPEFT_ERR_IO, compeft_decompress(missing, out, NULL, &report));
    free(missing);
    char *corrupt = path_of("truncated.cpeft");
    EXPECT(COMPEFT_ERR_CORRUPT, compeft_decompress(corrupt, out, NULL, &report));
    free(corrupt);
    CHECK(!file_exists("restored/adapter_config.json"));

    EXPECT(COMPEFT_OK, compeft_decompress(in, out, "{\"dtype\": \"bf16\"}", &report));
    CHECK(report != NULL && strstr(report, "\"folder\":true") != NULL && strstr(report, "\"tensors\":10") != NULL);
    compeft_string_free(report);
    CHECK(same_file("restored/adapter_config.json", "lora.adapter_config.json"));
    EXPECT(COMPEFT_ERR_IO, compeft_decompress(in, out, NULL, NULL));      /* exists */
    EXPECT(COMPEFT_OK, compeft_decompress(in, out, "{\"force\": true}", NULL));
    /* NAME.safetensors is one file, even for an adapter: its adapter_config.json is left out, with a warning. */
    char *one = path_of("restored-one.safetensors");
    EXPECT(COMPEFT_OK, compeft_decompress(in, one, NULL, &report));
    CHECK(report != NULL && strstr(report, "\"folder\":false") != NULL && strstr(report, "\"files_left_out\":[\"adapter_config.json\"]") != NULL);
    compeft_string_free(report);
    free(one);
    free(in);
    free(out);
}

static void test_merge(void) {
    char *report = (char *)"untouched";
    char *a = path_of("lora.cpeft"), *b = path_of("lora-b.cpeft"), *out = path_of("merged.cpeft");
    const char *inputs[2] = {a, b};
    const char *with_null[2] = {a, NULL};
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(NULL, 2, out, NULL, &report));
    CHECK(report == NULL && error_mentions("inputs is NULL"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 0, out, NULL, &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, (size_t)-1, out, NULL, &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(with_null, 2, out, NULL, &report));
    CHECK(error_mentions("inputs[1] is NULL"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, NULL, NULL, &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, out, "{\"weights\": [1, 2, 3]}", &report));
    CHECK(error_mentions("3 weight(s) for 2 input(s)"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, out, "{\"weights\": [1, \"x\"]}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, out, "{\"method\": \"average\"}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, out, "{\"seed\": -1}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, out, "{\"rank\": 0}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, out, "{\"lora\": \"factors\", \"rank\": 4}", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, out, "{\"out_density\": 0}", &report));
    /* An option the method does not use is refused, naming the method (as the command line refuses the flag). */
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, out, "{\"density\": 50}", &report));
    CHECK(error_mentions("compeft_merge: density does not apply to task-arithmetic"));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, out, "{\"method\": \"ties\", \"seed\": 1}", &report));
    CHECK(error_mentions("seed does not apply to ties"));
    char *folder = path_of("merged-folder");
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_merge(inputs, 2, folder, "{\"out_density\": 10}", &report));
    CHECK(error_mentions("apply to a .cpeft output"));
    EXPECT(COMPEFT_ERR_IO, compeft_merge(inputs, 2, a, "{\"force\": true}", &report));
    char *missing = path_of("missing.cpeft");
    const char *with_missing[2] = {a, missing};
    EXPECT(COMPEFT_ERR_IO, compeft_merge(with_missing, 2, out, NULL, &report));
    char *residual = path_of("residual.cpeft");
    const char *mixed[2] = {a, residual};
    compeft_status s = compeft_merge(mixed, 2, out, NULL, &report);
    CHECK(s == COMPEFT_ERR_CORRUPT || s == COMPEFT_ERR_UNSUPPORTED);
    CHECK(report == NULL && !file_exists("merged.cpeft"));

    EXPECT(COMPEFT_OK, compeft_merge(inputs, 2, out,
                                     "{\"method\": \"dare-ties\", \"density\": 50, \"weights\": [1, 0.5], \"seed\": 18446744073709551615, \"out_density\": 10}",
                                     &report));
    CHECK(report != NULL && strstr(report, "\"destination\":\"cpeft\"") != NULL && strstr(report, "\"method\":\"dare-ties\"") != NULL);
    CHECK(report != NULL && strstr(report, "\"seed\":18446744073709551615") != NULL);
    compeft_string_free(report);
    compeft_handle h = open_fixture("merged.cpeft");
    size_t n = 0;
    EXPECT(COMPEFT_OK, compeft_tensor_count(h, &n));
    CHECK(n == 10);
    EXPECT(COMPEFT_OK, compeft_close(h));
    EXPECT(COMPEFT_OK, compeft_merge(inputs, 2, folder, NULL, NULL));
    CHECK(file_exists("merged-folder/adapter_config.json") && file_exists("merged-folder/adapter_model.safetensors"));
    free(a);
    free(b);
    free(out);
    free(folder);
    free(missing);
    free(residual);
}

static void test_inspect_and_verify(void) {
    compeft_handle h = open_fixture("lora.cpeft");
    size_t needed = 0;
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_inspect_json(h, NULL, 0, &needed));
    CHECK(needed > 100);
    char *json = malloc(needed);
    memset(json, 'x', needed);
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_inspect_json(h, json, needed - 1, &needed));
    CHECK(json[0] == 'x');
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_inspect_json(h, NULL, needed, &needed));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_inspect_json(h, json, (size_t)-1, &needed));
    EXPECT(COMPEFT_OK, compeft_inspect_json(h, json, needed, NULL));
    CHECK(strlen(json) == needed - 1 && strstr(json, "\"format_version\":\"1.") != NULL);
    CHECK(strstr(json, "\"peft_type\":\"LORA\"") != NULL && strstr(json, "\"stored_bytes\":") != NULL);
    free(json);
    EXPECT(COMPEFT_OK, compeft_close(h));

    char *report = (char *)"untouched";
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_verify(NULL, &report));
    CHECK(report == NULL);
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_verify("", &report));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_verify("-", &report));
    char *path = path_of("missing.cpeft");
    EXPECT(COMPEFT_ERR_IO, compeft_verify(path, &report));
    free(path);
    EXPECT(COMPEFT_ERR_IO, compeft_verify(workdir, &report));
    CHECK(report == NULL);

    path = path_of("lora.cpeft");
    EXPECT(COMPEFT_OK, compeft_verify(path, &report));
    CHECK(report != NULL && strstr(report, "\"ok\":true") != NULL && strstr(report, "\"checked\":11") != NULL);
    compeft_string_free(report);
    EXPECT(COMPEFT_OK, compeft_verify(path, NULL));
    free(path);
    /* Damage is a finding, named, not a failed call. */
    path = path_of("corrupt-payload.cpeft");
    EXPECT(COMPEFT_OK, compeft_verify(path, &report));
    CHECK(report != NULL && strstr(report, "\"ok\":false") != NULL && strstr(report, "layers.10.w") != NULL);
    compeft_string_free(report);
    free(path);
    static const char *broken[4] = {"truncated.cpeft", "empty.cpeft", "not-a-container.bin", "newer-version.cpeft"};
    for (int i = 0; i < 4; i++) {
        path = path_of(broken[i]);
        report = NULL;
        EXPECT(COMPEFT_OK, compeft_verify(path, &report));
        CHECK(report != NULL && strstr(report, "\"ok\":false") != NULL && strstr(report, "\"checked\":0") != NULL);
        compeft_string_free(report);
        free(path);
    }
}

static void test_exact_bytes(void) {
    compeft_handle h = open_fixture("residual.cpeft");
    size_t counter = find(h, "step_counter");
    size_t size = 0;
    unsigned char *expected = read_file("residual.step_counter", &size);
    CHECK(expected != NULL && size == 24);
    unsigned char buffer[64];
    memset(buffer, 0xAB, sizeof buffer);
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_exact_bytes(h, counter, buffer, 23));
    CHECK(error_mentions("needs 24"));
    EXPECT(COMPEFT_ERR_BUFFER_TOO_SMALL, compeft_exact_bytes(h, counter, NULL, 0));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_exact_bytes(h, counter, NULL, 24));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_exact_bytes(h, counter, buffer, (size_t)-1));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_exact_bytes(h, 7, buffer, sizeof buffer));
    EXPECT(COMPEFT_ERR_INVALID_ARGUMENT, compeft_exact_bytes(h, (size_t)-1, buffer, sizeof buffer));
    EXPECT(COMPEFT_ERR_UNSUPPORTED, compeft_exact_bytes(h, find(h, "layers.10.w"), buffer, sizeof buffer));
    CHECK(error_mentions("compeft_decode"));
    CHECK(buffer[0] == 0xAB);
    EXPECT(COMPEFT_OK, compeft_exact_bytes(h, counter, buffer, sizeof buffer));
    CHECK(expected != NULL && memcmp(buffer, expected, 24) == 0 && buffer[24] == 0xAB);
    free(expected);
    EXPECT(COMPEFT_OK, compeft_close(h));

    /* A float exact tensor: its bytes are its F32 decode. */
    h = open_fixture("lora.cpeft");
    size_t head = find(h, "base_model.model.classifier.weight");
    float raw[3 * 64], decoded[3 * 64];
    EXPECT(COMPEFT_OK, compeft_exact_bytes(h, head, raw, sizeof raw));
    EXPECT(COMPEFT_OK, compeft_decode(h, head, COMPEFT_DTYPE_F32, decoded, sizeof decoded));
    CHECK(memcmp(raw, decoded, sizeof raw) == 0);
    EXPECT(COMPEFT_OK, compeft_close(h));
}

struct compress_job {
    const char *output;
    compeft_status status;
};

/* Compresses the adapter folder into its own output. */
static void *compress_worker(void *arg) {
    struct compress_job *job = arg;
    job->status = compress_names("lora-input", job->output, "{\"density\": 10, \"threads\": 1, \"force\": true}", NULL);
    return NULL;
}

static void test_concurrent_writes(void) {
    enum { writers = 4 };
    static const char *outputs[writers] = {"parallel-0.cpeft", "parallel-1.cpeft", "parallel-2.cpeft", "parallel-3.cpeft"};
    pthread_t threads[writers];
    struct compress_job jobs[writers];
    for (int i = 0; i < writers; i++) {
        jobs[i] = (struct compress_job){outputs[i], -1};
        CHECK(pthread_create(&threads[i], NULL, compress_worker, &jobs[i]) == 0);
    }
    for (int i = 0; i < writers; i++) {
        pthread_join(threads[i], NULL);
        EXPECT(COMPEFT_OK, jobs[i].status);
        CHECK(same_file(outputs[0], outputs[i]));
    }
}

/* ---- last error semantics --------------------------------------------------------------------- */

static void test_last_error_survives_success(void) {
    compeft_handle h;
    char *path = path_of("missing-c.cpeft");
    EXPECT(COMPEFT_ERR_IO, compeft_open(path, &h));
    free(path);
    CHECK(error_mentions("missing-c.cpeft"));
    h = open_fixture("residual.cpeft");
    CHECK(error_mentions("missing-c.cpeft"));                     /* success leaves it, as errno does */
    EXPECT(COMPEFT_OK, compeft_close(h));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_abi WORKDIR\n");
        return 2;
    }
    workdir = argv[1];
    test_version_and_names();
    test_open_errors();
    test_handles();
    test_info_and_find();
    test_decode_matches_swift();
    test_decode_errors();
    test_apply();
    test_metadata();
    test_threads();
    test_compress();
    test_decompress();
    test_merge();
    test_inspect_and_verify();
    test_exact_bytes();
    test_concurrent_writes();
    test_last_error_survives_success();
    printf("test_abi: %ld checks, %ld failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
