// SPDX-License-Identifier: Apache-2.0
//
// oracle.h: reading the msModelSlim oracle vectors of ../shared/oracle
// (README.md there: inputs input.<name>.npy, outputs <case>.<tensor>.npy)
// into plain vectors for the numerics suites.
#pragma once

#include "slim-test.h"

extern "C"
{
#include "slim-npy.h"
#include "slim-tensor.h"
}

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

struct OracleArray
{
  std::vector<int64_t> shape;
  std::vector<float> f32;  // float32 files
  std::vector<int8_t> i8;  // int8 files
  std::vector<uint8_t> u8; // uint8 files
};

// Loads oracle/<file>; a missing or unreadable file fails the test.
inline OracleArray
oracle_load (const std::string &file)
{
  OracleArray out;
  GError *error = nullptr;
  std::string path = slim_test_shared_path ("oracle/" + file);
  SlimTensor *t = slim_npy_read (path.c_str (), &error);
  GErrorPtr guard (error);

  EXPECT_NE (t, nullptr) << path << ": " << (error ? error->message : "");
  if (t == nullptr)
    return out;
  const gint64 *shape = slim_tensor_get_shape (t);
  for (guint d = 0; d < slim_tensor_get_n_dims (t); d++)
    out.shape.push_back (shape[d]);
  size_t n = (size_t)slim_tensor_get_n_elements (t);
  switch (slim_tensor_get_dtype (t))
    {
    case SLIM_DTYPE_F32:
      out.f32.resize (n);
      std::memcpy (out.f32.data (), slim_tensor_get_data (t), n * sizeof (float));
      break;
    case SLIM_DTYPE_I8:
      out.i8.resize (n);
      std::memcpy (out.i8.data (), slim_tensor_get_data (t), n);
      break;
    case SLIM_DTYPE_U8:
      out.u8.resize (n);
      std::memcpy (out.u8.data (), slim_tensor_get_data (t), n);
      break;
    default:
      ADD_FAILURE () << path << ": unexpected dtype";
    }
  slim_tensor_unref (t);
  return out;
}

inline std::vector<float>
oracle_f32 (const std::string &file)
{
  OracleArray a = oracle_load (file);
  EXPECT_FALSE (a.f32.empty ()) << file;
  return a.f32;
}

inline std::vector<int8_t>
oracle_i8 (const std::string &file)
{
  OracleArray a = oracle_load (file);
  EXPECT_FALSE (a.i8.empty ()) << file;
  return a.i8;
}

inline std::vector<uint8_t>
oracle_u8 (const std::string &file)
{
  OracleArray a = oracle_load (file);
  EXPECT_FALSE (a.u8.empty ()) << file;
  return a.u8;
}
