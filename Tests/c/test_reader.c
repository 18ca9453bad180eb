/*
 * test_reader.c — opens containers through `compeft_open_reader` with two transports the library knows
 * nothing about: pread on a file, and HTTP Range requests (libcurl) to a blob on a real OCI registry.
 *
 * Built and run by Tests/ExchangeTests/CReaderTests.swift:
 *
 *     cc -std=c99 -Wall -Wextra -Werror -pedantic -I include Tests/c/test_reader.c \
 *        -L LIBDIR -lCompeftC -Wl,-rpath,LIBDIR -lcurl -o test_reader
 *     ./test_reader CONTAINER TENSOR EXPECTED_F32 BLOB_URL
 *
 * CONTAINER is a .cpeft file; EXPECTED_F32 holds tensor TENSOR decoded as F32 by the Swift API; BLOB_URL
 * is the same container pushed to a registry (http://127.0.0.1:PORT/v2/REPO/blobs/sha256:…, anonymous).
 * Prints one line per failed check, the bytes each transport read, and "test_reader: N checks, F failed";
 * exits 0 only when F is 0.
 */
#define _POSIX_C_SOURCE 200809L

#include "compeft.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long checks, failures;

static void check_at(int ok, const char *expr, int line) {
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "FAIL test_reader.c:%d: %s (last error: %s)\n", line, expr, compeft_last_error());
    }
}
#define CHECK(expr) check_at((expr) ? 1 : 0, #expr, __LINE__)

/* ---- Transport 1: a file read with pread ---- */
typedef struct {
    int fd;
    long reads;
    long long bytes;
    int releases;
    int fail_after; /* reads that succeed before every read fails; -1: never fail */
} file_ctx;

static int file_read_at(void *context, uint64_t offset, void *buffer, size_t length) {
    file_ctx *c = context;
    if (c->fail_after >= 0 && c->reads >= c->fail_after) return 5;
    c->reads++;
    size_t done = 0;
    while (done < length) {
        ssize_t n = pread(c->fd, (char *)buffer + done, length - done, (off_t)(offset + done));
        if (n <= 0) return 1;
        done += (size_t)n;
    }
    c->bytes += (long long)length;
    return 0;
}

static void file_release(void *context) { ((file_ctx *)context)->releases++; }

/* ---- Transport 2: HTTP Range requests with libcurl ---- */
typedef struct {
    const char *url;
    long requests;
    long long bytes;
    int releases;
} http_ctx;

typedef struct {
    char *buffer;
    size_t want, got;
} sink;

static size_t on_body(char *data, size_t size, size_t count, void *user) {
    sink *s = user;
    size_t n = size * count;
    if (s->got + n > s->want) return 0; /* more than asked for: abort the transfer */
    memcpy(s->buffer + s->got, data, n);
    s->got += n;
    return n;
}

static int http_read_at(void *context, uint64_t offset, void *buffer, size_t length) {
    http_ctx *c = context;
    char range[64];
    snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)offset, (unsigned long long)(offset + length - 1));
    CURL *curl = curl_easy_init();
    if (!curl) return 1;
    sink s = {buffer, length, 0};
    curl_easy_setopt(curl, CURLOPT_URL, c->url);
    curl_easy_setopt(curl, CURLOPT_RANGE, range);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L); /* registries may redirect blobs to storage */
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    c->requests++;
    c->bytes += (long long)s.got;
    return (rc == CURLE_OK && status == 206 && s.got == length) ? 0 : 1;
}

static void http_release(void *context) { ((http_ctx *)context)->releases++; }

static float *read_floats(const char *path, size_t *count) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *v = malloc((size_t)n > 0 ? (size_t)n : 1);
    if (v && fread(v, 1, (size_t)n, f) != (size_t)n) { free(v); v = NULL; }
    fclose(f);
    *count = (size_t)n / sizeof(float);
    return v;
}

/* Decodes TENSOR through handle h and compares it with the expected values. */
static void check_decode(compeft_handle h, const char *tensor, const float *expected, size_t count) {
    size_t index = 0;
    compeft_tensor_desc d;
    CHECK(compeft_find_tensor(h, tensor, &index) == COMPEFT_OK);
    CHECK(compeft_tensor_info(h, index, &d) == COMPEFT_OK);
    CHECK((size_t)d.count == count);
    float *got = malloc(count * sizeof(float) + 1);
    CHECK(compeft_decode(h, index, COMPEFT_DTYPE_F32, got, count * sizeof(float)) == COMPEFT_OK);
    CHECK(memcmp(got, expected, count * sizeof(float)) == 0);
    free(got);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: test_reader CONTAINER TENSOR EXPECTED_F32 BLOB_URL\n");
        return 2;
    }
    const char *container = argv[1], *tensor = argv[2];
    size_t count = 0;
    float *expected = read_floats(argv[3], &count);
    CHECK(expected != NULL);
    struct stat st;
    CHECK(stat(container, &st) == 0);

    /* A file through callbacks: the same values as compeft_open; release once, at close. */
    file_ctx fc = {open(container, O_RDONLY), 0, 0, 0, -1};
    compeft_reader r = {(uint64_t)st.st_size, file_read_at, file_release, &fc, "file-callbacks"};
    compeft_handle h = COMPEFT_NULL_HANDLE;
    CHECK(compeft_open_reader(&r, &h) == COMPEFT_OK);
    long long opened = fc.bytes;
    check_decode(h, tensor, expected, count);
    printf("file: open read %lld bytes in %ld reads; one tensor %lld more; container %lld bytes\n", opened, fc.reads,
           fc.bytes - opened, (long long)st.st_size);
    CHECK(fc.releases == 0);
    CHECK(compeft_close(h) == COMPEFT_OK);
    CHECK(fc.releases == 1);

    /* A reader that fails: IO naming the source, release still exactly once. */
    file_ctx bad = {fc.fd, 0, 0, 0, 0};
    compeft_reader rb = {(uint64_t)st.st_size, file_read_at, file_release, &bad, "failing-source"};
    CHECK(compeft_open_reader(&rb, &h) == COMPEFT_ERR_IO);
    CHECK(h == COMPEFT_NULL_HANDLE);
    CHECK(strstr(compeft_last_error(), "failing-source") != NULL);
    CHECK(bad.releases == 1);

    /* Fails after the open: the decode is IO, the handle stays usable for closing. */
    file_ctx late = {fc.fd, 0, 0, 0, -1};
    compeft_reader rl = {(uint64_t)st.st_size, file_read_at, file_release, &late, "late-failure"};
    CHECK(compeft_open_reader(&rl, &h) == COMPEFT_OK);
    late.fail_after = (int)late.reads;
    size_t index = 0;
    CHECK(compeft_find_tensor(h, tensor, &index) == COMPEFT_OK);
    float one[1];
    CHECK(compeft_decode(h, index, COMPEFT_DTYPE_F32, one, count > 1 ? sizeof one : 0) != COMPEFT_OK);
    CHECK(compeft_close(h) == COMPEFT_OK);
    CHECK(late.releases == 1);

    /* A size that lies (larger than the file): the trailer is not where it says, CORRUPT or IO. */
    file_ctx lie = {fc.fd, 0, 0, 0, -1};
    compeft_reader rlie = {(uint64_t)st.st_size + 100, file_read_at, file_release, &lie, "lying-size"};
    compeft_status s = compeft_open_reader(&rlie, &h);
    CHECK(s == COMPEFT_ERR_IO || s == COMPEFT_ERR_CORRUPT);
    CHECK(lie.releases == 1);

    /* Bad arguments. */
    CHECK(compeft_open_reader(NULL, &h) == COMPEFT_ERR_INVALID_ARGUMENT);
    file_ctx nr = {fc.fd, 0, 0, 0, -1};
    compeft_reader rn = {(uint64_t)st.st_size, NULL, file_release, &nr, NULL};
    CHECK(compeft_open_reader(&rn, &h) == COMPEFT_ERR_INVALID_ARGUMENT);
    CHECK(nr.releases == 1);
    compeft_reader ro = {(uint64_t)st.st_size, file_read_at, file_release, &nr, NULL};
    CHECK(compeft_open_reader(&ro, NULL) == COMPEFT_ERR_INVALID_ARGUMENT);
    CHECK(nr.releases == 2);
    close(fc.fd);

    /* The registry blob over HTTP Range: only the ranges the reader needs cross the network. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    http_ctx hc = {argv[4], 0, 0, 0};
    compeft_reader rh = {(uint64_t)st.st_size, http_read_at, http_release, &hc, argv[4]};
    CHECK(compeft_open_reader(&rh, &h) == COMPEFT_OK);
    long long after_open = hc.bytes;
    long requests_open = hc.requests;
    check_decode(h, tensor, expected, count);
    CHECK(compeft_close(h) == COMPEFT_OK);
    CHECK(hc.releases == 1);
    printf("http: open fetched %lld bytes in %ld requests; one tensor %lld bytes in %ld; container %lld bytes\n", after_open,
           requests_open, hc.bytes - after_open, hc.requests - requests_open, (long long)st.st_size);
    CHECK(hc.bytes < (long long)st.st_size);
    curl_global_cleanup();

    free(expected);
    printf("test_reader: %ld checks, %ld failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
