// SPDX-License-Identifier: Apache-2.0
//
// test-tensor.cpp: SlimTensor refcounting, copy-on-write, views, alignment,
// reshape, shape validation and conversion.
#include "slim-test.h"

#include <cmath>
#include <cstring>

#include "slim-error.h"
#include "slim-tensor.h"

namespace
{

TEST (Tensor, NewIsZeroFilledAlignedAndWritable)
{
  for (guint d = 0; d < SLIM_N_DTYPES; d++)
    {
      const gint64 shape[] = { 3, 4, 2 };
      GError *error = nullptr;
      SlimTensor *t = slim_tensor_new ("t", (SlimDType)d, 3, shape, &error);
      ASSERT_NE (t, nullptr) << (error ? error->message : "");
      const SlimDTypeInfo *info = slim_dtype_get_info ((SlimDType)d);
      EXPECT_EQ (slim_tensor_get_n_elements (t), 24);
      EXPECT_EQ (slim_tensor_get_n_bytes (t), (gsize)(24 * info->bits / 8));
      EXPECT_EQ ((guintptr)slim_tensor_get_data (t) % SLIM_TENSOR_ALIGNMENT, 0u);
      const guint8 *bytes = static_cast<const guint8 *> (slim_tensor_get_data (t));
      for (gsize k = 0; k < slim_tensor_get_n_bytes (t); k++)
        ASSERT_EQ (bytes[k], 0) << info->name;
      EXPECT_TRUE (slim_tensor_is_writable (t));
      EXPECT_EQ (slim_tensor_get_dtype (t), (SlimDType)d);
      EXPECT_STREQ (slim_tensor_get_name (t), "t");
      slim_tensor_unref (t);
    }
  // scalars and empty tensors are valid
  g_autoptr (SlimTensor) scalar = slim_tensor_new (nullptr, SLIM_DTYPE_F32, 0, nullptr, nullptr);
  ASSERT_NE (scalar, nullptr);
  EXPECT_EQ (slim_tensor_get_n_elements (scalar), 1);
  EXPECT_STREQ (slim_tensor_get_name (scalar), "");
  const gint64 empty_shape[] = { 0, 5 };
  g_autoptr (SlimTensor) empty = slim_tensor_new ("e", SLIM_DTYPE_F32, 2, empty_shape, nullptr);
  ASSERT_NE (empty, nullptr);
  EXPECT_EQ (slim_tensor_get_n_bytes (empty), 0u);
  EXPECT_NE (slim_tensor_get_data (empty), nullptr);
}

TEST (Tensor, InvalidShapesAreRejected)
{
  struct Case
  {
    const char *what;
    SlimDType dtype;
    guint n_dims;
    std::vector<gint64> shape;
  };
  const Case cases[] = {
    { "negative dim", SLIM_DTYPE_F32, 2, { 4, -1 } },
    { "too many dims", SLIM_DTYPE_F32, 7, { 1, 1, 1, 1, 1, 1, 1 } },
    { "element count overflow", SLIM_DTYPE_U8, 3, { 1ll << 40, 1ll << 40, 1ll << 40 } },
    { "byte count overflow", SLIM_DTYPE_F64, 2, { 1ll << 31, 1ll << 31 } },
    { "beyond address space", SLIM_DTYPE_U8, 1, { G_MAXINT64 } },
    { "odd packed count", SLIM_DTYPE_I4X2, 2, { 3, 3 } },
  };
  for (const Case &c : cases)
    {
      GError *error = nullptr;
      SlimTensor *t = slim_tensor_new ("bad", c.dtype, c.n_dims, c.shape.data (), &error);
      EXPECT_EQ (t, nullptr) << c.what;
      ASSERT_NE (error, nullptr) << c.what;
      EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE))
          << c.what << ": " << error->message;
      g_clear_error (&error);
    }
}

TEST (Tensor, RefcountDecidesWritability)
{
  SlimTensor *t = slim_tensor_new_2d ("w", SLIM_DTYPE_F32, 2, 3);
  EXPECT_TRUE (slim_tensor_is_writable (t));
  SlimTensor *second = slim_tensor_ref (t);
  EXPECT_EQ (second, t);
  EXPECT_FALSE (slim_tensor_is_writable (t));
  slim_tensor_unref (second);
  EXPECT_TRUE (slim_tensor_is_writable (t));
  // make_writable on an unshared tensor returns the same object
  SlimTensor *same = slim_tensor_make_writable (t);
  EXPECT_EQ (same, t);
  slim_tensor_unref (same);
}

TEST (Tensor, MakeWritableCopiesWhenShared)
{
  SlimTensor *t = slim_tensor_new_1d ("cow", SLIM_DTYPE_F32, 8);
  float *data = static_cast<float *> (slim_tensor_get_data_mut (t));
  for (int i = 0; i < 8; i++)
    data[i] = (float)i;
  SlimTensor *shared = slim_tensor_ref (t);
  SlimTensor *mine = slim_tensor_make_writable (shared); // drops the extra ref
  ASSERT_NE (mine, t);
  EXPECT_TRUE (slim_tensor_is_writable (mine));
  EXPECT_TRUE (slim_tensor_is_writable (t)) << "the shared ref was handed over";
  EXPECT_EQ ((guintptr)slim_tensor_get_data (mine) % SLIM_TENSOR_ALIGNMENT, 0u);
  float *copy = static_cast<float *> (slim_tensor_get_data_mut (mine));
  EXPECT_EQ (std::memcmp (copy, data, 8 * sizeof (float)), 0);
  copy[3] = 100.0f;
  EXPECT_EQ (data[3], 3.0f) << "the original is untouched";
  EXPECT_STREQ (slim_tensor_get_name (mine), "cow");
  slim_tensor_unref (mine);
  slim_tensor_unref (t);
}

TEST (Tensor, ViewsAreReadOnlyAndKeepTheirOwnerAlive)
{
  // 3 floats of padding, then a (2, 2) tensor
  float *buffer = g_new (float, 7); /* (7) */
  for (int i = 0; i < 7; i++)
    buffer[i] = (float)(10 * i);
  GBytes *bytes = g_bytes_new_take (buffer, 7 * sizeof (float));
  const gint64 shape[] = { 2, 2 };
  GError *error = nullptr;
  SlimTensor *view
      = slim_tensor_new_view ("v", SLIM_DTYPE_F32, 2, shape, bytes, 3 * sizeof (float), &error);
  ASSERT_NE (view, nullptr) << (error ? error->message : "");
  g_bytes_unref (bytes); // the view keeps the memory alive (ASan checks the reads below)
  EXPECT_FALSE (slim_tensor_is_writable (view));
  const float *data = static_cast<const float *> (slim_tensor_get_data (view));
  EXPECT_EQ (data[0], 30.0f);
  EXPECT_EQ (data[3], 60.0f);

  SlimTensor *reader = slim_tensor_ref (view);
  SlimTensor *owned = slim_tensor_make_writable (view); // view's ref moves into the copy
  ASSERT_NE (owned, reader);
  EXPECT_TRUE (slim_tensor_is_writable (owned));
  float *writable = static_cast<float *> (slim_tensor_get_data_mut (owned));
  EXPECT_EQ (writable[0], 30.0f);
  writable[0] = -1.0f;
  EXPECT_EQ (static_cast<const float *> (slim_tensor_get_data (reader))[0], 30.0f);
  // even a sole reference to a view is not writable
  EXPECT_FALSE (slim_tensor_is_writable (reader));
  slim_tensor_unref (owned);
  slim_tensor_unref (reader);
}

TEST (Tensor, MisalignedViewBecomesAnAlignedCopy)
{
  guint8 *buffer = g_new0 (guint8, 17); /* (17) bytes: 1 of padding, then 4 floats */
  const float values[] = { 1.0f, -2.5f, 3.0f, 1e-3f };
  std::memcpy (buffer + 1, values, sizeof values);
  GBytes *bytes = g_bytes_new_take (buffer, 17);
  const gint64 shape[] = { 4 };
  GError *error = nullptr;
  SlimTensor *t = slim_tensor_new_view ("m", SLIM_DTYPE_F32, 1, shape, bytes, 1, &error);
  ASSERT_NE (t, nullptr);
  EXPECT_EQ ((guintptr)slim_tensor_get_data (t) % 4, 0u);
  EXPECT_EQ (std::memcmp (slim_tensor_get_data (t), values, sizeof values), 0);
  EXPECT_TRUE (slim_tensor_is_writable (t)) << "a private copy";
  slim_tensor_unref (t);
  // single-byte types need no alignment: a real view
  const gint64 n16[] = { 16 };
  t = slim_tensor_new_view ("b", SLIM_DTYPE_U8, 1, n16, bytes, 1, &error);
  ASSERT_NE (t, nullptr);
  EXPECT_EQ (slim_tensor_get_data (t), (const guint8 *)g_bytes_get_data (bytes, nullptr) + 1);
  EXPECT_FALSE (slim_tensor_is_writable (t));
  slim_tensor_unref (t);
  g_bytes_unref (bytes);
}

TEST (Tensor, ViewOutsideItsBufferIsRejected)
{
  GBytes *bytes = g_bytes_new_take (g_new0 (guint8, 16), 16);
  const gint64 shape[] = { 4 };
  for (gsize offset : { (gsize)1, (gsize)17, G_MAXSIZE })
    {
      GError *error = nullptr;
      SlimTensor *view
          = slim_tensor_new_view ("v", SLIM_DTYPE_F32, 1, shape, bytes, offset, &error);
      EXPECT_EQ (view, nullptr) << offset;
      EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_OFFSETS)) << offset;
      g_clear_error (&error);
    }
  const gint64 negative[] = { -4 };
  GError *error = nullptr;
  EXPECT_EQ (slim_tensor_new_view ("v", SLIM_DTYPE_F32, 1, negative, bytes, 0, &error), nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE));
  g_clear_error (&error);
  g_bytes_unref (bytes);
}

TEST (Tensor, ReshapeSharesStorageCopyOnWrite)
{
  SlimTensor *t = slim_tensor_new_2d ("r", SLIM_DTYPE_F32, 4, 6);
  float *data = static_cast<float *> (slim_tensor_get_data_mut (t));
  for (int i = 0; i < 24; i++)
    data[i] = (float)i;
  const gint64 shape[] = { 2, 3, 4 };
  GError *error = nullptr;
  SlimTensor *r = slim_tensor_reshape (t, 3, shape, &error);
  ASSERT_NE (r, nullptr);
  EXPECT_EQ (slim_tensor_get_data (r), slim_tensor_get_data (t)) << "no copy";
  EXPECT_EQ (slim_tensor_get_dim (r, -1), 4);
  EXPECT_EQ (slim_tensor_get_dim (r, 0), 2);
  EXPECT_EQ (slim_tensor_get_n_dims (r), 3u);
  EXPECT_STREQ (slim_tensor_get_name (r), "r");
  // both share the storage: neither may be written in place
  EXPECT_FALSE (slim_tensor_is_writable (t));
  EXPECT_FALSE (slim_tensor_is_writable (r));
  r = slim_tensor_make_writable (r);
  EXPECT_NE (slim_tensor_get_data (r), slim_tensor_get_data (t));
  static_cast<float *> (slim_tensor_get_data_mut (r))[0] = 99.0f;
  EXPECT_EQ (data[0], 0.0f);
  EXPECT_TRUE (slim_tensor_is_writable (t)) << "storage no longer shared";

  const gint64 wrong[] = { 5, 5 };
  EXPECT_EQ (slim_tensor_reshape (t, 2, wrong, &error), nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);
  const gint64 negative[] = { -4, -6 };
  EXPECT_EQ (slim_tensor_reshape (t, 2, negative, &error), nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE));
  g_clear_error (&error);
  slim_tensor_unref (r);
  slim_tensor_unref (t);
}

TEST (Tensor, ConvertGoesThroughFloat32Rows)
{
  const gint64 n = 10000; // more than one conversion chunk
  SlimTensor *t = slim_tensor_new_1d ("c", SLIM_DTYPE_F32, n);
  float *data = static_cast<float *> (slim_tensor_get_data_mut (t));
  for (gint64 i = 0; i < n; i++)
    data[i] = std::sin ((float)i) * 100.0f;
  GError *error = nullptr;
  for (SlimDType dtype : { SLIM_DTYPE_BF16, SLIM_DTYPE_F16, SLIM_DTYPE_I8, SLIM_DTYPE_I4X2,
                           SLIM_DTYPE_F8_E4M3FN, SLIM_DTYPE_F64 })
    {
      const SlimDTypeInfo *info = slim_dtype_get_info (dtype);
      SlimTensor *converted = slim_tensor_convert (t, dtype, &error);
      ASSERT_NE (converted, nullptr) << (error ? error->message : "");
      EXPECT_EQ (slim_tensor_get_dtype (converted), dtype);
      // expected bytes: the reference row conversion of the whole array
      std::vector<guint8> expected (slim_tensor_get_n_bytes (converted), 0);
      info->from_f32_ref (data, expected.data (), (gsize)n);
      EXPECT_EQ (std::memcmp (expected.data (), slim_tensor_get_data (converted), expected.size ()),
                 0)
          << info->name;
      SlimTensor *back = slim_tensor_to_f32 (converted, &error);
      ASSERT_NE (back, nullptr);
      std::vector<float> expected_back (n);
      info->to_f32_ref (expected.data (), expected_back.data (), (gsize)n);
      EXPECT_EQ (std::memcmp (expected_back.data (), slim_tensor_get_data (back), n * 4), 0)
          << info->name;
      slim_tensor_unref (back);
      slim_tensor_unref (converted);
    }
  SlimTensor *same = slim_tensor_convert (t, SLIM_DTYPE_F32, &error);
  EXPECT_NE (same, t);
  EXPECT_EQ (std::memcmp (slim_tensor_get_data (same), data, n * 4), 0);
  slim_tensor_unref (same);
  slim_tensor_unref (t);
}

TEST (Tensor, CopyShapeStringAndFiniteness)
{
  SlimTensor *t = slim_tensor_new_2d ("orig", SLIM_DTYPE_BF16, 64, 172);
  g_autofree char *text = slim_tensor_shape_to_string (t);
  EXPECT_STREQ (text, "[64, 172]");
  EXPECT_TRUE (slim_tensor_is_finite (t));
  SlimTensor *copy = slim_tensor_copy (t, "renamed");
  EXPECT_STREQ (slim_tensor_get_name (copy), "renamed");
  EXPECT_STREQ (slim_tensor_get_name (t), "orig");
  static_cast<guint16 *> (slim_tensor_get_data_mut (copy))[100] = slim_f32_to_bf16 (NAN);
  EXPECT_FALSE (slim_tensor_is_finite (copy));
  EXPECT_TRUE (slim_tensor_is_finite (t));
  slim_tensor_set_name (copy, "again");
  EXPECT_STREQ (slim_tensor_get_name (copy), "again");
  slim_tensor_unref (copy);
  slim_tensor_unref (t);

  SlimTensor *ints = slim_tensor_new_1d ("i", SLIM_DTYPE_I32, 4);
  EXPECT_TRUE (slim_tensor_is_finite (ints)) << "integers are always finite";
  slim_tensor_unref (ints);
  GType type = SLIM_TYPE_TENSOR;
  EXPECT_TRUE (G_TYPE_IS_BOXED (type));
}

} // namespace
