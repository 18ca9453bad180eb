/*
 * test_file_changes.c — a container that changes under an open handle must give an error, never a
 * crash of the process that links libCompeftC.so (issue 16 §3).
 *
 * Built and run by Tests/CompeftCTests/FileChangeTests.swift, in its own process so that a SIGBUS
 * fails that test instead of killing the test runner:
 *
 *     cc -std=c99 -Wall -Wextra -Werror -pedantic -I include Tests/c/test_file_changes.c \
 *        -L LIBDIR -lCompeftC -Wl,-rpath,LIBDIR -o test_file_changes
 *     ./test_file_changes WORKDIR
 *
 * WORKDIR holds residual.cpeft (Fixtures/files/residual.safetensors compressed; its tensor
 * "layers.10.w" is 300×200 F32) and lora.cpeft (another container). The program works on copies.
 *
 * Prints one line per failed check and "test_file_changes: N checks, F failed"; exits 0 only when F is 0.
 */
#define _POSIX_C_SOURCE 200809L

#include "compeft.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long checks;
static long failures;

static void check_at(int ok, const char *expr, int line) {
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "FAIL test_file_changes.c:%d: %s (last error: %s)\n", line, expr, compeft_last_error());
    }
}
#define CHECK(expr) check_at((expr) ? 1 : 0, #expr, __LINE__)

static char workdir[2048];

static void path_in(char *out, const char *name) { snprintf(out, 4096, "%s/%s", workdir, name); }

/* The whole of a file, or NULL. */
static unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc(n > 0 ? (size_t)n : 1);
    if (bytes && fread(bytes, 1, (size_t)n, f) != (size_t)n) {
        free(bytes);
        bytes = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return bytes;
}

/* Writes `bytes` over `path` in place: same inode, truncated first (what a careless `cp` does). */
static int write_in_place(const char *path, const unsigned char *bytes, size_t size) {
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, bytes + done, size - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    close(fd);
    return done == size ? 0 : -1;
}

static int write_new(const char *path, const unsigned char *bytes, size_t size) {
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return -1;
    ssize_t n = write(fd, bytes, size);
    close(fd);
    return n == (ssize_t)size ? 0 : -1;
}

/* Opens a fresh copy `name` of residual.cpeft and finds "layers.10.w" in it. */
static int open_copy(const char *name, const unsigned char *original, size_t size, compeft_handle *h, size_t *index,
                     compeft_tensor_desc *desc) {
    char path[4096];
    path_in(path, name);
    if (write_new(path, original, size) != 0) return 0;
    if (compeft_open(path, h) != COMPEFT_OK) return 0;
    if (compeft_find_tensor(*h, "layers.10.w", index) != COMPEFT_OK) return 0;
    return compeft_tensor_info(*h, *index, desc) == COMPEFT_OK;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_file_changes WORKDIR\n");
        return 2;
    }
    snprintf(workdir, sizeof workdir, "%s", argv[1]);
    char path[4096];
    size_t residual_size = 0, lora_size = 0;
    path_in(path, "residual.cpeft");
    unsigned char *residual = read_all(path, &residual_size);
    path_in(path, "lora.cpeft");
    unsigned char *lora = read_all(path, &lora_size);
    if (!residual || !lora) {
        fprintf(stderr, "cannot read the containers in %s\n", workdir);
        return 2;
    }

    compeft_handle h;
    size_t index;
    compeft_tensor_desc desc;

    /* 1. Truncated under an open handle: every read of a payload is COMPEFT_ERR_IO naming the file. */
    CHECK(open_copy("truncated.cpeft", residual, residual_size, &h, &index, &desc));
    size_t bytes = (size_t)desc.count * sizeof(float);
    float *values = malloc(bytes);
    float *before = malloc(bytes);
    CHECK(values && before);
    path_in(path, "truncated.cpeft");
    CHECK(truncate(path, 1024) == 0);
    CHECK(compeft_decode(h, index, COMPEFT_DTYPE_F32, values, bytes) == COMPEFT_ERR_IO);
    CHECK(strstr(compeft_last_error(), "truncated.cpeft") != NULL);
    CHECK(strstr(compeft_last_error(), "changed while open") != NULL);
    memset(values, 0, bytes);
    CHECK(compeft_apply(h, index, COMPEFT_DTYPE_F32, values, bytes, 1.0) == COMPEFT_ERR_IO);
    CHECK(truncate(path, 0) == 0);
    CHECK(compeft_decode(h, index, COMPEFT_DTYPE_F32, values, bytes) == COMPEFT_ERR_IO);
    size_t needed = 0;
    CHECK(compeft_metadata_json(h, NULL, 0, &needed) == COMPEFT_ERR_BUFFER_TOO_SMALL && needed > 0); /* the index was read on open */
    CHECK(compeft_close(h) == COMPEFT_OK);

    /* 2. Rewritten in place with other bytes: an error (the payload's checksum, or its end), not a crash. */
    CHECK(open_copy("rewritten.cpeft", residual, residual_size, &h, &index, &desc));
    path_in(path, "rewritten.cpeft");
    CHECK(write_in_place(path, lora, lora_size) == 0);
    compeft_status status = compeft_decode(h, index, COMPEFT_DTYPE_F32, values, bytes);
    CHECK(status == COMPEFT_ERR_CORRUPT || status == COMPEFT_ERR_IO);
    /* Grown back to its old size with zeros over the payload: the checksum refuses it. */
    unsigned char *zeros = calloc(residual_size, 1);
    CHECK(zeros && write_in_place(path, zeros, residual_size) == 0);
    CHECK(compeft_decode(h, index, COMPEFT_DTYPE_F32, values, bytes) == COMPEFT_ERR_CORRUPT);
    free(zeros);
    CHECK(compeft_close(h) == COMPEFT_OK);

    /* 3. Replaced by rename: the open handle keeps decoding the old content, exactly. */
    CHECK(open_copy("replaced.cpeft", residual, residual_size, &h, &index, &desc));
    CHECK(compeft_decode(h, index, COMPEFT_DTYPE_F32, before, bytes) == COMPEFT_OK);
    char temporary[4096];
    path_in(temporary, "replaced.cpeft.new");
    path_in(path, "replaced.cpeft");
    CHECK(write_new(temporary, lora, lora_size) == 0);
    CHECK(rename(temporary, path) == 0);
    CHECK(compeft_decode(h, index, COMPEFT_DTYPE_F32, values, bytes) == COMPEFT_OK);
    CHECK(memcmp(values, before, bytes) == 0);
    size_t count_old = 0, count_new = 0;
    CHECK(compeft_tensor_count(h, &count_old) == COMPEFT_OK);
    CHECK(compeft_close(h) == COMPEFT_OK);
    /* A new handle sees the new file. */
    CHECK(compeft_open(path, &h) == COMPEFT_OK);
    CHECK(compeft_tensor_count(h, &count_new) == COMPEFT_OK);
    CHECK(count_new != count_old);
    CHECK(compeft_find_tensor(h, "layers.10.w", &index) == COMPEFT_ERR_NOT_FOUND);
    CHECK(compeft_close(h) == COMPEFT_OK);

    free(values);
    free(before);
    free(residual);
    free(lora);
    printf("test_file_changes: %ld checks, %ld failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
