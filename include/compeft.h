/*
 * compeft.h — the C ABI of compeft: read `.cpeft` containers from C, C++, Python (ctypes), ….
 *
 * A container holds the compressed task vector of an adapter or fine-tune (docs/FORMAT.md). This API
 * opens one, lists its tensors, decodes any tensor into memory you own as F32, F16 or BF16, and adds a
 * tensor's residual into base weights in place. Only the payload of the tensor you ask for is read.
 *
 * Building and linking
 * --------------------
 * SwiftPM names a dynamic library `lib<Product>.so`, and the product name `compeft` is taken by the
 * command-line tool, so the package builds this library as `libCompeftC.so` (product `CompeftC`).
 * `scripts/build-libcompeft.sh` builds it in release and copies it to `.build/release/libcompeft.so`
 * (or to `--output PATH`), so that:
 *
 *     bash scripts/build-libcompeft.sh
 *     cc -std=c99 -I include app.c -L .build/release -lcompeft -Wl,-rpath,"$PWD/.build/release"
 *
 * (`-lCompeftC` against `libCompeftC.so` works just as well.) The library needs the Swift runtime
 * (found through its RUNPATH, the toolchain's `usr/lib/swift/linux`), libzstd and libhdf5.
 *
 * Conventions
 * -----------
 * - Every function that can fail returns a `compeft_status`: `COMPEFT_OK` (0) or an error code, and
 *   then `compeft_last_error()` says what went wrong in words (file, tensor, expected versus found).
 *   No function aborts the process on bad input: NULL pointers, unknown or closed handles, indexes out
 *   of range, unknown dtype codes and small buffers are all reported as errors.
 * - Out-parameters are written only when the call returns `COMPEFT_OK`, with three exceptions:
 *   `out_needed` (written whenever it is not NULL and the handle is valid), `compeft_open`'s
 *   `out_handle` (set to `COMPEFT_NULL_HANDLE` on failure) and a rank above COMPEFT_MAX_RANK.
 * - Sizes are in bytes. Values are little-endian, as on every platform compeft runs on.
 * - Tensors are addressed by index, 0 ..< count, in the container's order (names sorted bytewise).
 *
 * Threads
 * -------
 * Every function may be called from any thread. One handle may be used by many threads at once
 * (decoding is read-only). Handles are never reused: a closed handle stays invalid for the life of the
 * process, so a double close, or a call on a stale handle, returns `COMPEFT_ERR_BAD_HANDLE`. A call
 * racing `compeft_close` on the same handle either completes normally or returns BAD_HANDLE; the
 * container's memory is released when the last such call returns.
 *
 * Values
 * ------
 * A residual tensor decodes to init + τ (init 0 for LoRA factors and plain residuals, 1 for (IA)³
 * vectors), computed in binary32 and rounded to the requested type to nearest, ties to even. For a full
 * fine-tune (init "base") the library has no base weights, so `compeft_decode` gives τ alone; use
 * `compeft_apply` to add τ into the base weights. An exact tensor (role EXACT) decodes to its stored
 * values; non-float exact tensors (I64, …) cannot be decoded (COMPEFT_ERR_UNSUPPORTED).
 */
#ifndef COMPEFT_H
#define COMPEFT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this interface; `compeft_abi_version()` returns the library's. Version 2 added the
    section "Writing and checking containers"; version 1's functions are unchanged. */
#define COMPEFT_ABI_VERSION 2

/** The most dimensions `compeft_tensor_info` reports. */
#define COMPEFT_MAX_RANK 8

/** The result of a call: `COMPEFT_OK` or one of the `COMPEFT_ERR_*` codes. */
typedef int32_t compeft_status;
enum {
    /** Success. */
    COMPEFT_OK = 0,
    /** A NULL pointer, an index out of range, an unknown dtype code, a non-finite factor, a NULL buffer
        with a non-zero size, an empty path, or a weights buffer larger than the tensor. */
    COMPEFT_ERR_INVALID_ARGUMENT = 1,
    /** The handle was never returned by `compeft_open`, or has been closed. */
    COMPEFT_ERR_BAD_HANDLE = 2,
    /** No tensor of that name; the container has no `adapter_config.json`. */
    COMPEFT_ERR_NOT_FOUND = 3,
    /** The buffer is smaller than the result; `out_needed` (where there is one) holds the size. */
    COMPEFT_ERR_BUFFER_TOO_SMALL = 4,
    /** Not a container, or damaged: a checksum mismatch, a payload that does not decode, a bad index. */
    COMPEFT_ERR_CORRUPT = 5,
    /** Valid but not supported: a newer format version or payload encoding, decoding a non-float
        tensor, a dtype other than F32/F16/BF16 as output, a rank above COMPEFT_MAX_RANK, a factor
        other than 1 for an exact tensor. */
    COMPEFT_ERR_UNSUPPORTED = 6,
    /** The file cannot be opened or mapped (missing, a directory, no permission). */
    COMPEFT_ERR_IO = 7
};

/** An element type, as safetensors names them. Only F32, F16 and BF16 can be decoded into. */
typedef int32_t compeft_dtype;
enum {
    COMPEFT_DTYPE_F32 = 1,
    COMPEFT_DTYPE_F16 = 2,
    COMPEFT_DTYPE_BF16 = 3,
    COMPEFT_DTYPE_F64 = 4,
    COMPEFT_DTYPE_I64 = 5,
    COMPEFT_DTYPE_I32 = 6,
    COMPEFT_DTYPE_I16 = 7,
    COMPEFT_DTYPE_I8 = 8,
    COMPEFT_DTYPE_U64 = 9,
    COMPEFT_DTYPE_U32 = 10,
    COMPEFT_DTYPE_U16 = 11,
    COMPEFT_DTYPE_U8 = 12,
    COMPEFT_DTYPE_BOOL = 13,
    COMPEFT_DTYPE_F8_E5M2 = 14,
    COMPEFT_DTYPE_F8_E4M3 = 15
};

/** How a tensor is stored. */
typedef int32_t compeft_role;
enum {
    /** A compressed residual τ. */
    COMPEFT_ROLE_RESIDUAL = 1,
    /** Stored losslessly (a classifier head, a non-float tensor, …). */
    COMPEFT_ROLE_EXACT = 2
};

/** What a residual is measured from: value = init + τ. */
typedef int32_t compeft_init;
enum {
    COMPEFT_INIT_ZERO = 1, /**< LoRA factors, plain residual files */
    COMPEFT_INIT_ONE = 2,  /**< (IA)³ scaling vectors */
    COMPEFT_INIT_BASE = 3  /**< a full fine-tune: the base model's tensor of the same name */
};

/** An open container. 0 (`COMPEFT_NULL_HANDLE`) is never a valid handle. */
typedef uint64_t compeft_handle;
#define COMPEFT_NULL_HANDLE ((compeft_handle)0)

/** What the index says about one tensor (128 bytes, no padding). */
typedef struct compeft_tensor_desc {
    /** The tensor's name, NUL-terminated UTF-8; owned by the handle, valid until `compeft_close`. */
    const char *name;
    /** The output file it belongs to (`adapter_model.safetensors`, a shard name); same lifetime. */
    const char *file;
    /** Number of dimensions (0 for a scalar). May exceed COMPEFT_MAX_RANK: see `compeft_tensor_info`. */
    uint32_t rank;
    /** The original element type (`COMPEFT_DTYPE_*`). */
    compeft_dtype dtype;
    /** `COMPEFT_ROLE_*`. */
    compeft_role role;
    /** `COMPEFT_INIT_*`: what the residual is measured from (recorded for exact tensors too). */
    compeft_init init;
    /** The first min(rank, COMPEFT_MAX_RANK) dimensions; the rest are 0. */
    int64_t shape[COMPEFT_MAX_RANK];
    /** Number of values (the product of the shape; 1 for a scalar). */
    int64_t count;
    /** Values kept by the top-k selection (|τ| ≥ threshold), zeros included; `count` for exact tensors. */
    int64_t kept;
    /** Kept values that are non-zero: the values actually coded (0 for exact tensors). */
    int64_t nonzero;
    /** The scale s: every coded value of a ternary tensor (ternary-bitmap or ternary-gap) is ±s. 0 for exact tensors. */
    float scale;
    /** The payload encoding id (docs/FORMAT.md: 0 raw, 1 ternary-bitmap, 2 sparse-f32, 3 ternary-gap). */
    uint32_t encoding;
} compeft_tensor_desc;

/** The compeft version that built the library, e.g. "0.1.0" (a static string). */
const char *compeft_version(void);

/** The ABI version of the library; compare it with COMPEFT_ABI_VERSION. */
uint32_t compeft_abi_version(void);

/**
 * What the last failing call on this thread went wrong with, as one line of UTF-8 ("" when no call has
 * failed on this thread). Successful calls leave it unchanged, as with errno. The string belongs to the
 * library and stays valid until the next failing call on the same thread.
 */
const char *compeft_last_error(void);

/** The name of a status code ("COMPEFT_ERR_BAD_HANDLE"; "COMPEFT_UNKNOWN_STATUS" for other values). */
const char *compeft_status_name(compeft_status status);

/**
 * Opens the container at `path` and checks its preamble, trailer and index (payloads are checked when
 * they are read). The file is memory-mapped read-only; `-` is an ordinary file name here.
 *
 * Errors: INVALID_ARGUMENT (NULL `path` or `out_handle`, empty path), IO (cannot open or map),
 * CORRUPT (not a container, or damaged), UNSUPPORTED (a newer format version).
 */
compeft_status compeft_open(const char *path, compeft_handle *out_handle);

/**
 * Closes a handle. Pointers from `compeft_tensor_info` become invalid once calls in flight on other
 * threads have returned. Errors: BAD_HANDLE (unknown, or already closed).
 */
compeft_status compeft_close(compeft_handle handle);

/** The number of tensors. Errors: BAD_HANDLE, INVALID_ARGUMENT (NULL `out_count`). */
compeft_status compeft_tensor_count(compeft_handle handle, size_t *out_count);

/**
 * Describes tensor `index` in `*out_info`.
 *
 * Errors: BAD_HANDLE, INVALID_ARGUMENT (NULL `out_info`, `index` out of range), UNSUPPORTED (the rank
 * exceeds COMPEFT_MAX_RANK: `*out_info` is still filled, with `rank` the true rank and `shape` holding
 * the first COMPEFT_MAX_RANK dimensions).
 */
compeft_status compeft_tensor_info(compeft_handle handle, size_t index, compeft_tensor_desc *out_info);

/** The index of the tensor called `name`. Errors: BAD_HANDLE, INVALID_ARGUMENT (NULL), NOT_FOUND. */
compeft_status compeft_find_tensor(compeft_handle handle, const char *name, size_t *out_index);

/**
 * Decodes tensor `index` into `buffer` as `dtype` (F32, F16 or BF16): count × 4 or 2 bytes, written
 * from the start of the buffer; a larger buffer is fine. An empty tensor needs no buffer (NULL, 0).
 * See "Values" above for what a tensor decodes to.
 *
 * Errors: BAD_HANDLE; INVALID_ARGUMENT (index out of range, a dtype code not in `compeft_dtype`, NULL
 * `buffer` with a non-zero size); UNSUPPORTED (F64 or another type as output; a non-float tensor);
 * BUFFER_TOO_SMALL; CORRUPT (the payload fails its checksum or does not decode).
 */
compeft_status compeft_decode(compeft_handle handle, size_t index, compeft_dtype dtype, void *buffer,
                              size_t buffer_bytes);

/**
 * Adds `factor` × τ of tensor `index` into `weights` in place: `weights` holds exactly count values of
 * `dtype` (F32, F16 or BF16), e.g. the base model's tensor for a full fine-tune. Only the positions the
 * container kept are touched. An exact tensor is not a residual: applying it (with factor 1) replaces
 * `weights` by its values. Any alignment works (a misaligned buffer is worked on through a copy).
 *
 * Errors: as `compeft_decode`, and INVALID_ARGUMENT for a non-finite factor or a buffer larger than the
 * tensor; UNSUPPORTED for an exact tensor with a factor other than 1.
 */
compeft_status compeft_apply(compeft_handle handle, size_t index, compeft_dtype dtype, void *weights,
                             size_t weights_bytes, float factor);

/**
 * The container's index as compact JSON, keys sorted (the fields docs/FORMAT.md describes: tool,
 * inputKind, peftType, compression, tensors, …), NUL-terminated. `*out_needed` (if not NULL) receives
 * the size including the NUL; a call with (NULL, 0) returns BUFFER_TOO_SMALL and the size.
 *
 * Errors: BAD_HANDLE; INVALID_ARGUMENT (NULL `buffer` with a non-zero size); BUFFER_TOO_SMALL (nothing
 * is written).
 */
compeft_status compeft_metadata_json(compeft_handle handle, char *buffer, size_t size, size_t *out_needed);

/**
 * The `adapter_config.json` stored in the container (a PEFT adapter's), byte-for-byte and
 * NUL-terminated; sizes as for `compeft_metadata_json`.
 *
 * Errors: as `compeft_metadata_json`; NOT_FOUND when the container holds no adapter_config.json;
 * CORRUPT when its payload is damaged.
 */
compeft_status compeft_adapter_config(compeft_handle handle, char *buffer, size_t size, size_t *out_needed);

/* =====================================================================================================
 * Writing and checking containers (ABI version 2)
 * =====================================================================================================
 *
 * The command line's compress, decompress, merge, inspect and verify as calls, with the same checks,
 * defaults and messages; they are what the Python package `compeft` (python/) calls.
 *
 * - Options are a JSON object (`options_json`; NULL or "" for none) whose keys are the command's long
 *   options in snake_case: `{"density": 10, "zstd_level": 19, "force": true}`. A key the function does
 *   not list, or a value of the wrong type, is INVALID_ARGUMENT naming it.
 * - Reports are the command's `--json` report (README, "JSON reports"): compact UTF-8 JSON, keys sorted.
 *   A function that writes files hands its report over as a string the library allocated: pass the
 *   address of a `char *` (or NULL when you do not want the report) and free it with
 *   `compeft_string_free`. It is set to NULL whenever the call fails.
 * - Paths are ordinary file names: `-` (the command line's standard input or output) is
 *   INVALID_ARGUMENT; write `./-` for a file of that name.
 * - Outputs are written beside the destination under a temporary name and renamed into place only when
 *   complete, so a failed call leaves nothing behind. An existing output is IO unless "force" is true; an
 *   output that is, or contains, one of the inputs is IO whatever "force" says. Inputs are never modified.
 * - Errors: INVALID_ARGUMENT (a NULL, empty or `-` path; options that are not a JSON object; an unknown
 *   key; a value out of range), IO (a missing input, an existing output, a write that fails), CORRUPT (a
 *   malformed or damaged input), UNSUPPORTED (an input compeft cannot read, a newer format version).
 *   These calls take as long as the command does (seconds for large inputs) and use up to "threads"
 *   threads; they may run on many threads at once, on different outputs.
 */

/** Frees a string the library handed over (a report). NULL is ignored. */
void compeft_string_free(char *string);

/**
 * Compresses `input` into the container `output`, as `compeft compress INPUT -o OUTPUT` does. `input` is
 * a PEFT adapter folder, a `.safetensors` file of residuals, a sharded checkpoint (its
 * `*.safetensors.index.json` or folder), an HDF5 file, a `torch.save` file (`.bin`/`.pt`), or with
 * "base" a full fine-tune.
 *
 * Options: "density" (percent kept, 0 < K <= 100; default 20), "alpha" ("auto" or a positive number),
 * "method" ("compeft", "stc", "prune"), "scope" ("global", "tensor"), "scale" ("global", "tensor",
 * "module"), "lora_gauge" ("trained", "svd", "svd-dct", "auto"; LoRA only) — scope, scale and lora_gauge
 * left out take the defaults for the kind of expert, as `compeft compress` does (LoRA: module scale in the
 * auto gauge; full fine-tune: scope tensor; otherwise the paper's global rule) — "base" (path of the base model),
 * "compress_all" (bool), "init" ("zero", "one"), "threads" (>= 1; default all cores; the bytes do not
 * depend on it), "zstd_level" (1..22; default 19), "force" (bool).
 * Report: as `compeft compress --json`.
 */
compeft_status compeft_compress(const char *input, const char *output, const char *options_json, char **out_report);

/**
 * Writes a container's tensors back out, as `compeft decompress INPUT -o OUTPUT` does: a PEFT adapter
 * folder for an adapter (PEFT loads it as it is), else the original file or shards.
 *
 * Options: "dtype" ("f32", "f16", "bf16": every float tensor in this type), "format" ("safetensors",
 * "hdf5"), "base" (a full fine-tune's base model: write base + τ instead of τ), "threads" (>= 1),
 * "force" (bool). Report: as `compeft decompress --json`.
 */
compeft_status compeft_decompress(const char *input, const char *output, const char *options_json, char **out_report);

/**
 * Merges `input_count` inputs (`inputs[0 ..< input_count]`: adapter folders, checkpoints, containers)
 * into `output`, as `compeft merge INPUT... -o OUTPUT` does: a folder, a `.safetensors` file, or a
 * `.cpeft` container, chosen by the output's name as on the command line.
 *
 * Options: "method" ("task-arithmetic", "ties", "dare-linear", "dare-ties", "magnitude-prune"),
 * "density" (percent, default 20), "weights" (a list of input_count numbers), "lambda", "base",
 * "election" ("total", "frequency"), "seed" (integer >= 0), "scope" ("tensor", "global"), "lora"
 * ("exact", "factors"), "rank" (> 0), "out_density" and "out_alpha" (a `.cpeft` output's compression),
 * "expand" (bool), "force" (bool). Report: as `compeft merge --json`.
 *
 * Errors: as above, and INVALID_ARGUMENT for `input_count` 0, NULL `inputs` or a NULL entry in it;
 * CORRUPT or UNSUPPORTED for inputs that do not merge (different kinds, tensors or shapes).
 */
compeft_status compeft_merge(const char *const *inputs, size_t input_count, const char *output,
                             const char *options_json, char **out_report);

/**
 * What `compeft inspect --json` reports on an open container (settings, sizes, and how each tensor is
 * stored), NUL-terminated, sizes as for `compeft_metadata_json`: a call with (NULL, 0) returns
 * BUFFER_TOO_SMALL and the size in `*out_needed`.
 *
 * Errors: BAD_HANDLE; INVALID_ARGUMENT (NULL `buffer` with a non-zero size); BUFFER_TOO_SMALL.
 */
compeft_status compeft_inspect_json(compeft_handle handle, char *buffer, size_t size, size_t *out_needed);

/**
 * Checks every checksum of the container at `path` and that every payload decodes, as `compeft verify`
 * does, and reports `{"file", "ok", "checked", "problems"}` (as `compeft verify --json`). The call
 * succeeds whenever the check ran: a damaged container, or a file that is not one, is a report with
 * "ok": false and each problem named (file, tensor), not an error.
 *
 * Errors: INVALID_ARGUMENT (a NULL, empty or `-` path), IO (the file cannot be read).
 */
compeft_status compeft_verify(const char *path, char **out_report);

/**
 * Copies the stored values of an exact tensor (role EXACT: a classifier head, a step counter, ...) in its
 * own dtype, byte for byte as in the input: count × the dtype's size bytes (F64 8, I64 8, BOOL 1, ...),
 * written from the start of `buffer`; a larger buffer is fine. This is how non-float tensors, which
 * `compeft_decode` refuses, are read.
 *
 * Errors: BAD_HANDLE; INVALID_ARGUMENT (index out of range, NULL `buffer` with a non-zero size);
 * UNSUPPORTED (a residual tensor: decode it with `compeft_decode`); BUFFER_TOO_SMALL; CORRUPT (the
 * payload fails its checksum).
 */
compeft_status compeft_exact_bytes(compeft_handle handle, size_t index, void *buffer, size_t buffer_bytes);

/* ==== Containers from any transport: caller-supplied reads =========================================
 *
 * `compeft_open_reader` opens a container whose bytes the caller reads: a blob on an OCI registry
 * fetched with HTTP `Range` (libcurl, any client), an object store, a buffer in memory. The library
 * itself never touches a network. It reads the preamble, the trailer and the index when the handle is
 * opened, and then only the payload of each tensor that is decoded or applied, checking every read
 * against the container's XXH64 checksums before using it. `Tests/c/test_reader.c` reads a container
 * from a real registry this way; docs/FORMAT.md ("compeft on OCI registries") says how to find the blob.
 */

/** The reads `compeft_open_reader` makes; the library copies the struct (not `context`). */
typedef struct compeft_reader {
    /** The container's size in bytes (an OCI layer descriptor's `size`). */
    uint64_t size;
    /**
     * Reads exactly `length` bytes at `offset` (offset + length <= size) into `buffer` and returns 0, or
     * returns any other value when it cannot (then the call that needed the bytes fails with
     * COMPEFT_ERR_IO). May be called from several threads at once when one handle is used by several.
     */
    int (*read_at)(void *context, uint64_t offset, void *buffer, size_t length);
    /** Called exactly once, when the handle is closed or the open fails; NULL when nothing is to be freed. */
    void (*release)(void *context);
    /** Passed to `read_at` and `release` as it is. */
    void *context;
    /** What to call the source in messages (a reference, a URL), NUL-terminated; copied; NULL: "reader". */
    const char *name;
} compeft_reader;

/**
 * Opens a container read through `reader` and checks its preamble, trailer and index, as `compeft_open`
 * does for a file. Every other function works on the handle as on one from `compeft_open`.
 * Errors: INVALID_ARGUMENT (NULL `reader`, `read_at` or `out_handle`; `reader->size` above what this
 * platform addresses), IO (a read failed), CORRUPT, UNSUPPORTED. `reader->release` is called exactly once
 * whenever `reader` and `release` are not NULL: on failure before this function returns, otherwise by
 * `compeft_close`.
 */
compeft_status compeft_open_reader(const compeft_reader *reader, compeft_handle *out_handle);

/*
 * Not for applications: the whole of the `compeft-hdf5-reader` program that ships beside this library.
 * compeft reads HDF5 files in that separate process, so that a crash inside libhdf5 on a hostile file ends
 * it and becomes an error here (COMPEFT_ERR_CORRUPT naming the file) instead of ending the caller. The
 * program reads requests on its standard input and answers on its standard output; returns its exit status.
 */
int compeft_hdf5_reader_main(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* COMPEFT_H */
