#ifndef COMPEFT_CZSTD_SHIM_H
#define COMPEFT_CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
