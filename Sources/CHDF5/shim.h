#ifndef COMPEFT_CHDF5_SHIM_H
#define COMPEFT_CHDF5_SHIM_H

// libhdf5 1.10 as Swift sees it. The predefined datatypes, the property list classes and the file
// access flags are macros that expand to `(H5OPEN global_variable)`, which Swift cannot import;
// each is wrapped here in a static inline function of the same name with a `compeft_` prefix.
// Plain constants (H5P_DEFAULT, H5S_ALL, H5E_DEFAULT, H5O_INFO_BASIC) import as they are.

#include <hdf5.h>

// MARK: File access flags
static inline unsigned compeft_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned compeft_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned compeft_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }

// MARK: Property list classes
static inline hid_t compeft_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }

// MARK: IEEE floating point, explicit byte order
static inline hid_t compeft_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t compeft_H5T_IEEE_F32BE(void) { return H5T_IEEE_F32BE; }
static inline hid_t compeft_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t compeft_H5T_IEEE_F64BE(void) { return H5T_IEEE_F64BE; }

// MARK: Standard integers, little endian
static inline hid_t compeft_H5T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t compeft_H5T_STD_I16LE(void) { return H5T_STD_I16LE; }
static inline hid_t compeft_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t compeft_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t compeft_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t compeft_H5T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t compeft_H5T_STD_U32LE(void) { return H5T_STD_U32LE; }
static inline hid_t compeft_H5T_STD_U64LE(void) { return H5T_STD_U64LE; }

// MARK: Native types
static inline hid_t compeft_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t compeft_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }

#endif
