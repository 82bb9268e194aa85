// SPDX-License-Identifier: Apache-2.0
//
// Resident pages of the memory-mapped reader: get_tensor_f32 drops the
// mapped source pages of a converted tensor (MADV_DONTNEED), keeps those
// of a tensor used in place, and dropped pages read back unchanged.
#include "slim-test.h"
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>
#include "slim-safetensors.h"
#include "slim-tensor.h"

namespace
{

const gint64 kNBf16 = 32768; // 64 KiB of bf16: 16 pages of 4 KiB
const gint64 kNF32 = 16384;  // 64 KiB of f32

// Small multiples of 1/8: exact in bf16 and f32, so comparisons are exact.
float
value_at (gint64 i)
{
  return (float)((i % 251) - 125) / 8.0f;
}

guint16
to_bf16 (float x)
{
  guint32 bits;
  std::memcpy (&bits, &x, sizeof bits);
  return (guint16)(bits >> 16); // exact for these values
}

// A two-tensor safetensors file: "a" bf16 (kNBf16), then "b" f32 (kNF32).
std::string
write_file (const std::string &dir)
{
  std::string path = dir + "/pages.safetensors";
  std::string header = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[" + std::to_string (kNBf16)
                       + "],\"data_offsets\":[0," + std::to_string (2 * kNBf16)
                       + "]},\"b\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string (kNF32)
                       + "],\"data_offsets\":[" + std::to_string (2 * kNBf16) + ","
                       + std::to_string (2 * kNBf16 + 4 * kNF32) + "]}}";
  while (header.size () % 8 != 0)
    header += ' ';
  guint64 n_header_bytes = header.size (); // little-endian host assumed (x86-64, aarch64)
  std::ofstream out (path, std::ios::binary);
  out.write ((const char *)&n_header_bytes, 8);
  out << header;
  for (gint64 i = 0; i < kNBf16; i++)
    {
      guint16 v = to_bf16 (value_at (i));
      out.write ((const char *)&v, 2);
    }
  for (gint64 i = 0; i < kNF32; i++)
    {
      float v = value_at (i);
      out.write ((const char *)&v, 4);
    }
  return path;
}

// Resident KiB of this process's mappings of path (/proc/self/smaps).
long
rss_kib_of (const std::string &path)
{
  std::ifstream smaps ("/proc/self/smaps");
  std::string line;
  bool in_mapping = false;
  long total = 0;

  while (std::getline (smaps, line))
    {
      // a mapping's line starts "start-end perms ..."; its fields "Name: ..."
      std::string first = line.substr (0, line.find (' '));
      bool is_header = first.find ('-') != std::string::npos && first.back () != ':';
      if (is_header)
        in_mapping = line.size () >= path.size ()
                     && line.compare (line.size () - path.size (), path.size (), path) == 0;
      else if (in_mapping && line.rfind ("Rss:", 0) == 0)
        total += std::stol (line.substr (4));
    }
  return total;
}

float
touch (const SlimTensor *tensor)
{
  const volatile guint8 *p = (const guint8 *)slim_tensor_get_data (tensor);
  float sum = 0.0f;
  for (gsize i = 0; i < slim_tensor_get_n_bytes (tensor); i += 512)
    sum += p[i];
  return sum;
}

} // namespace

TEST (SafetensorsPages, ConvertedTensorDropsItsPagesWhichReadBackUnchanged)
{
  if (sysconf (_SC_PAGESIZE) != 4096)
    GTEST_SKIP () << "the sizes assume 4 KiB pages";
  std::string path = write_file (slim_test_make_tmpdir ());
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimSafetensors) st = slim_safetensors_open (path.c_str (), &error);
  ASSERT_NE (st, nullptr) << error->message;

  g_autoptr (SlimTensor) view = slim_safetensors_get_tensor (st, "a", &error);
  ASSERT_NE (view, nullptr) << error->message;
  g_autoptr (SlimTensor) other = slim_safetensors_get_tensor (st, "b", &error);
  ASSERT_NE (other, nullptr) << error->message;
  // every page of the file mapped, so that the kernel's fault-around
  // cannot map pages later on its own
  touch (view);
  touch (other);
  long before = rss_kib_of (path);
  ASSERT_GE (before, 128) << "the bf16 tensor's pages should be resident after reading it";

  g_autoptr (SlimTensor) wide = slim_safetensors_get_tensor_f32 (st, "a", &error);
  ASSERT_NE (wide, nullptr) << error->message;
  long after = rss_kib_of (path);
  // 64 KiB of data starting at an 8-byte aligned offset hold >= 15 whole
  // pages; allow one more partial page at each end.
  EXPECT_LE (after, before - 56) << "converted tensor's pages stayed resident";

  const float *w = (const float *)slim_tensor_get_data (wide);       /* (kNBf16) */
  const guint16 *raw = (const guint16 *)slim_tensor_get_data (view); /* (kNBf16) bf16 */
  for (gint64 i = 0; i < kNBf16; i++)
    {
      ASSERT_EQ (w[i], value_at (i)) << i;
      ASSERT_EQ (raw[i], to_bf16 (value_at (i))) << "dropped page not read back at " << i;
    }
}

TEST (SafetensorsPages, TensorUsedInPlaceKeepsItsPages)
{
  if (sysconf (_SC_PAGESIZE) != 4096)
    GTEST_SKIP () << "the sizes assume 4 KiB pages";
  std::string path = write_file (slim_test_make_tmpdir ());
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimSafetensors) st = slim_safetensors_open (path.c_str (), &error);
  ASSERT_NE (st, nullptr) << error->message;

  g_autoptr (SlimTensor) view = slim_safetensors_get_tensor (st, "b", &error);
  ASSERT_NE (view, nullptr) << error->message;
  touch (view);
  long before = rss_kib_of (path);
  g_autoptr (SlimTensor) f32 = slim_safetensors_get_tensor_f32 (st, "b", &error);
  ASSERT_NE (f32, nullptr) << error->message;
  if (slim_tensor_get_data (f32) == slim_tensor_get_data (view))
    {
      // the f32 tensor points into the mapping: its pages must stay (Rss is
      // exact in KiB; nothing else touches this mapping in between)
      EXPECT_GE (rss_kib_of (path), before);
    }
  const float *v = (const float *)slim_tensor_get_data (f32); /* (kNF32) */
  for (gint64 i = 0; i < kNF32; i++)
    ASSERT_EQ (v[i], value_at (i)) << i;
}
