#ifndef COMPEFT_CZSTD_SHIM_H
#define COMPEFT_CZSTD_SHIM_H
/* ZSTD_decompressBound (an upper bound on a frame's decoded size, read from its block headers) is in
   libzstd's "static" API section; the shared library exports it. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>
#endif
