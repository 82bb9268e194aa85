// SPDX-License-Identifier: Apache-2.0
//
// test-safetensors.cpp: the safetensors reader and writer, and
// `slimflow inspect`.
//
// - round trips of every dtype, metadata, packed types, sharding (names,
//   index JSON, the rollover rule, an oversize tensor, part size 0),
//   determinism and atomic creation;
// - malformed files, each checked three ways: the in-memory header parser
//   (the fuzz entry point), slim_safetensors_open() on a file, and the CLI
//   (exit 1, one line on stderr, no sanitizer report); plus truncation of a
//   valid file at every length and byte mutations of its header;
// - the shared stories260K models (f32 and bf16).
// Comparisons are exact: the files hold bytes, nothing is recomputed in
// floating point except through the same reference conversions.
#include "slim-test.h"

#include <cstring>
#include <fstream>
#include <json-glib/json-glib.h>
#include <map>
#include <set>
#include <unistd.h>

#include "slim-error.h"
#include "slim-json.h"
#include "slim-safetensors-private.h"
#include "slim-safetensors.h"

namespace
{

std::string
le64 (guint64 value)
{
  std::string out (8, '\0');
  for (int i = 0; i < 8; i++)
    out[i] = (char)((value >> (8 * i)) & 0xff);
  return out;
}

// A raw file: 8-byte length, header text, data_bytes bytes of data.
std::string
raw_file (const std::string &header, gsize data_bytes)
{
  return le64 (header.size ()) + header + std::string (data_bytes, '\x11');
}

void
write_bytes (const std::string &path, const std::string &bytes)
{
  GError *error = nullptr;
  ASSERT_TRUE (g_file_set_contents (path.c_str (), bytes.data (), (gssize)bytes.size (), &error))
      << (error ? error->message : "");
}

std::string
read_bytes (const std::string &path)
{
  char *contents = nullptr;
  gsize n_bytes = 0;
  EXPECT_TRUE (g_file_get_contents (path.c_str (), &contents, &n_bytes, nullptr)) << path;
  std::string out (contents != nullptr ? contents : "", n_bytes);
  g_free (contents);
  return out;
}

std::vector<std::string>
list_dir (const std::string &path)
{
  std::vector<std::string> names;
  GDir *dir = g_dir_open (path.c_str (), 0, nullptr);
  EXPECT_NE (dir, nullptr) << path;
  if (dir == nullptr)
    return names;
  const char *name;
  while ((name = g_dir_read_name (dir)) != nullptr)
    names.push_back (name);
  g_dir_close (dir);
  std::sort (names.begin (), names.end ());
  return names;
}

// A tensor whose bytes come from float values through the dtype's
// reference conversion (so every dtype holds varied, valid data).
SlimTensor *
make_tensor (const char *name, SlimDType dtype, std::vector<gint64> shape, float seed)
{
  GError *error = nullptr;
  SlimTensor *t = slim_tensor_new (name, dtype, (guint)shape.size (), shape.data (), &error);
  EXPECT_NE (t, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  if (t == nullptr)
    return nullptr;
  gint64 n = slim_tensor_get_n_elements (t);
  std::vector<float> values (n);
  for (gint64 i = 0; i < n; i++)
    values[i] = seed + (float)((i * 7919) % 23) - 11.0f + 0.37f * (float)(i % 3);
  slim_dtype_get_info (dtype)->from_f32_ref (values.data (), slim_tensor_get_data_mut (t),
                                             (gsize)n);
  return t;
}

SlimTensor *
make_bytes_tensor (const char *name, gint64 n_bytes)
{
  return make_tensor (name, SLIM_DTYPE_U8, { n_bytes }, 1.0f);
}

bool
same_bytes (const SlimTensor *a, const SlimTensor *b)
{
  return slim_tensor_get_n_bytes (a) == slim_tensor_get_n_bytes (b)
         && std::memcmp (slim_tensor_get_data (a), slim_tensor_get_data (b),
                         slim_tensor_get_n_bytes (a))
                == 0;
}

JsonNode *
parse_json_file (const std::string &path)
{
  JsonParser *parser = json_parser_new ();
  GError *error = nullptr;
  EXPECT_TRUE (json_parser_load_from_file (parser, path.c_str (), &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  JsonNode *root
      = json_parser_get_root (parser) ? json_node_copy (json_parser_get_root (parser)) : nullptr;
  g_object_unref (parser);
  return root;
}

// ---- round trips ----------------------------------------------------------

TEST (Safetensors, EveryDTypeRoundTrips)
{
  std::string dir = slim_test_make_tmpdir ();
  std::string path = dir + "/all.safetensors";
  std::vector<SlimTensor *> tensors;
  for (guint d = 0; d < SLIM_N_DTYPES; d++)
    {
      const SlimDTypeInfo *info = slim_dtype_get_info ((SlimDType)d);
      if (info->safetensors_name == nullptr)
        continue;
      std::string name = std::string ("t.") + info->name;
      tensors.push_back (make_tensor (name.c_str (), (SlimDType)d, { 3, 5 }, (float)d));
    }
  tensors.push_back (make_tensor ("scalar", SLIM_DTYPE_F32, {}, 2.0f));
  tensors.push_back (make_tensor ("empty", SLIM_DTYPE_F32, { 0, 4 }, 2.0f));
  tensors.push_back (make_tensor ("six.dims", SLIM_DTYPE_BF16, { 1, 2, 1, 3, 1, 2 }, 2.0f));
  GHashTable *metadata = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (metadata, (gpointer) "format", (gpointer) "pt");
  g_hash_table_insert (metadata, (gpointer) "quote\"d", (gpointer) "line\nbreak \xc3\xa9");
  GError *error = nullptr;
  ASSERT_TRUE (slim_safetensors_write_file (path.c_str (), tensors.data (), (guint)tensors.size (),
                                            metadata, &error))
      << (error ? error->message : "");
  g_hash_table_unref (metadata);
  EXPECT_EQ (list_dir (dir), std::vector<std::string>{ "all.safetensors" })
      << "no temporary file is left behind";
  // the data section starts 8-byte aligned
  std::string bytes = read_bytes (path);
  guint64 header_bytes = 0;
  for (int i = 7; i >= 0; i--)
    header_bytes = (header_bytes << 8) | (guint8)bytes[i];
  EXPECT_EQ ((8 + header_bytes) % 8, 0u);

  SlimSafetensors *reader = slim_safetensors_open (path.c_str (), &error);
  ASSERT_NE (reader, nullptr) << (error ? error->message : "");
  EXPECT_EQ (slim_safetensors_get_n_tensors (reader), tensors.size ());
  EXPECT_EQ (slim_safetensors_get_n_files (reader), 1u);
  GHashTable *read_metadata = slim_safetensors_get_metadata (reader);
  EXPECT_STREQ ((const char *)g_hash_table_lookup (read_metadata, "format"), "pt");
  EXPECT_STREQ ((const char *)g_hash_table_lookup (read_metadata, "quote\"d"),
                "line\nbreak \xc3\xa9");
  guint64 total = 0;
  for (SlimTensor *t : tensors)
    {
      const char *name = slim_tensor_get_name (t);
      SlimTensor *back = slim_safetensors_get_tensor (reader, name, &error);
      ASSERT_NE (back, nullptr) << name << ": " << (error ? error->message : "");
      EXPECT_EQ (slim_tensor_get_dtype (back), slim_tensor_get_dtype (t)) << name;
      ASSERT_EQ (slim_tensor_get_n_dims (back), slim_tensor_get_n_dims (t)) << name;
      for (guint k = 0; k < slim_tensor_get_n_dims (t); k++)
        EXPECT_EQ (slim_tensor_get_shape (back)[k], slim_tensor_get_shape (t)[k]) << name;
      EXPECT_TRUE (same_bytes (back, t)) << name;
      // a read-only view into the mapping, or (when the file leaves the data
      // unaligned: tensors of mixed dtypes are contiguous) an aligned copy
      guint element_bytes = MAX (slim_dtype_get_info (slim_tensor_get_dtype (t))->bits / 8, 1u);
      EXPECT_EQ ((guintptr)slim_tensor_get_data (back) % element_bytes, 0u) << name;
      if (std::strcmp (name, "t.f32") == 0)
        {
          EXPECT_FALSE (slim_tensor_is_writable (back)) << "the first tensor is 8-aligned: a view";
        }
      total += slim_tensor_get_n_bytes (t);
      SlimDType dtype;
      guint n_dims;
      gint64 shape[SLIM_TENSOR_MAX_DIMS];
      ASSERT_TRUE (slim_safetensors_get_info (reader, name, &dtype, &n_dims, shape));
      EXPECT_EQ (dtype, slim_tensor_get_dtype (t));
      slim_tensor_unref (back);
    }
  EXPECT_EQ (slim_safetensors_get_total_bytes (reader), total);
  // names come sorted
  const char *const *names = slim_safetensors_get_names (reader);
  for (guint i = 1; names[i] != nullptr; i++)
    EXPECT_LT (std::strcmp (names[i - 1], names[i]), 0);
  EXPECT_FALSE (slim_safetensors_contains (reader, "absent"));
  EXPECT_EQ (slim_safetensors_get_tensor (reader, "absent", &error), nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR));
  g_clear_error (&error);
  g_object_unref (reader);
  for (SlimTensor *t : tensors)
    slim_tensor_unref (t);
}

TEST (Safetensors, PackedTypesAreStoredAsHalvedBytes)
{
  std::string dir = slim_test_make_tmpdir ();
  std::string path = dir + "/packed.safetensors";
  SlimTensor *tensors[] = { make_tensor ("w.i4", SLIM_DTYPE_I4X2, { 4, 6 }, 0.0f),
                            make_tensor ("w.u4", SLIM_DTYPE_U4X2, { 2, 2 }, 8.0f) };
  GError *error = nullptr;
  ASSERT_TRUE (slim_safetensors_write_file (path.c_str (), tensors, 2, nullptr, &error));
  SlimSafetensors *reader = slim_safetensors_open (path.c_str (), &error);
  ASSERT_NE (reader, nullptr);
  SlimTensor *i4 = slim_safetensors_get_tensor (reader, "w.i4", &error);
  SlimTensor *u4 = slim_safetensors_get_tensor (reader, "w.u4", &error);
  EXPECT_EQ (slim_tensor_get_dtype (i4), SLIM_DTYPE_I8);
  EXPECT_EQ (slim_tensor_get_dtype (u4), SLIM_DTYPE_U8);
  EXPECT_EQ (slim_tensor_get_dim (i4, -1), 3);
  EXPECT_EQ (slim_tensor_get_dim (i4, 0), 4);
  EXPECT_EQ (slim_tensor_get_dim (u4, -1), 1);
  EXPECT_TRUE (same_bytes (i4, tensors[0]));
  EXPECT_TRUE (same_bytes (u4, tensors[1]));
  slim_tensor_unref (i4);
  slim_tensor_unref (u4);
  g_object_unref (reader);
  // an odd last dimension cannot be stored as bytes
  SlimTensor *odd = make_tensor ("odd", SLIM_DTYPE_I4X2, { 2, 3 }, 0.0f);
  EXPECT_FALSE (
      slim_safetensors_write_file ((dir + "/odd.safetensors").c_str (), &odd, 1, nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE));
  g_clear_error (&error);
  slim_tensor_unref (odd);
  for (SlimTensor *t : tensors)
    slim_tensor_unref (t);
}

// Sizes 40, 40, 20, 30, 120, 10 bytes with a 100-byte limit.  The rule
// "close the shard when it is not empty and pending + next >= limit" gives
//   shard 1: a(40) b(40)      (80 + 20 >= 100 closes it)
//   shard 2: c(20) d(30)      (50 + 120 >= 100 closes it)
//   shard 3: e(120) alone     (oversize; 120 + 10 >= 100 closes it)
//   shard 4: f(10)
TEST (Safetensors, ShardingFollowsTheRolloverRule)
{
  std::string dir = slim_test_make_tmpdir () + "/out";
  const std::vector<std::pair<std::string, gint64> > sizes
      = { { "a", 40 }, { "b", 40 }, { "c", 20 }, { "d", 30 }, { "e", 120 }, { "f", 10 } };
  const std::vector<int> expected_shard = { 1, 1, 2, 2, 3, 4 };
  GError *error = nullptr;
  SlimSafetensorsWriter *writer = slim_safetensors_writer_new (dir.c_str (), "m", 100, &error);
  ASSERT_NE (writer, nullptr) << (error ? error->message : "");
  slim_safetensors_writer_set_metadata (writer, "format", "pt");
  std::vector<SlimTensor *> tensors;
  for (const auto &s : sizes)
    {
      SlimTensor *t = make_bytes_tensor (s.first.c_str (), s.second);
      tensors.push_back (t);
      if (s.second >= 100)
        {
          ScopedExpectLog expect (G_LOG_LEVEL_MESSAGE, "gets a shard of its own");
          ASSERT_TRUE (slim_safetensors_writer_add (writer, t, &error));
        }
      else
        ASSERT_TRUE (slim_safetensors_writer_add (writer, t, &error))
            << (error ? error->message : "");
    }
  EXPECT_EQ (slim_safetensors_writer_get_n_tensors (writer), 6u);
  // duplicate names are refused
  EXPECT_FALSE (slim_safetensors_writer_add (writer, tensors[0], &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  g_clear_error (&error);
  ASSERT_TRUE (slim_safetensors_writer_finish (writer, &error)) << (error ? error->message : "");
  g_object_unref (writer);

  std::vector<std::string> expected_files
      = { "m-00001-of-00004.safetensors", "m-00002-of-00004.safetensors",
          "m-00003-of-00004.safetensors", "m-00004-of-00004.safetensors",
          "m.safetensors.index.json" };
  EXPECT_EQ (list_dir (dir), expected_files) << "final names only, no temporary files";

  // the index: {"metadata": {"total_size": 260}, "weight_map": {name: file}}
  JsonNode *root = parse_json_file (dir + "/m.safetensors.index.json");
  ASSERT_NE (root, nullptr);
  JsonObject *index = json_node_get_object (root);
  EXPECT_EQ (json_object_get_size (index), 2u);
  EXPECT_EQ (
      json_object_get_int_member (json_object_get_object_member (index, "metadata"), "total_size"),
      260);
  JsonObject *weight_map = json_object_get_object_member (index, "weight_map");
  ASSERT_NE (weight_map, nullptr);
  EXPECT_EQ (json_object_get_size (weight_map), sizes.size ());
  for (gsize i = 0; i < sizes.size (); i++)
    {
      char expected[64];
      g_snprintf (expected, sizeof expected, "m-%05d-of-00004.safetensors", expected_shard[i]);
      EXPECT_STREQ (json_object_get_string_member (weight_map, sizes[i].first.c_str ()), expected)
          << sizes[i].first;
      // and the shard itself holds exactly its tensors
      SlimSafetensors *shard = slim_safetensors_open ((dir + "/" + expected).c_str (), &error);
      ASSERT_NE (shard, nullptr);
      EXPECT_TRUE (slim_safetensors_contains (shard, sizes[i].first.c_str ()));
      EXPECT_STREQ (
          (const char *)g_hash_table_lookup (slim_safetensors_get_metadata (shard), "format"), "pt")
          << "metadata in every shard";
      g_object_unref (shard);
    }
  json_node_unref (root);
  SlimSafetensors *one
      = slim_safetensors_open ((dir + "/m-00001-of-00004.safetensors").c_str (), &error);
  EXPECT_EQ (slim_safetensors_get_n_tensors (one), 2u);
  g_object_unref (one);

  // the folder opens through its index and gives back every tensor
  SlimSafetensors *reader = slim_safetensors_open (dir.c_str (), &error);
  ASSERT_NE (reader, nullptr) << (error ? error->message : "");
  EXPECT_EQ (slim_safetensors_get_n_files (reader), 4u);
  EXPECT_EQ (slim_safetensors_get_n_tensors (reader), 6u);
  EXPECT_EQ (slim_safetensors_get_total_bytes (reader), 260u);
  for (SlimTensor *t : tensors)
    {
      SlimTensor *back = slim_safetensors_get_tensor (reader, slim_tensor_get_name (t), &error);
      ASSERT_NE (back, nullptr);
      EXPECT_TRUE (same_bytes (back, t));
      slim_tensor_unref (back);
    }
  g_object_unref (reader);
  for (SlimTensor *t : tensors)
    slim_tensor_unref (t);
}

// Boundary of the rule: pending + next == limit closes the shard.
TEST (Safetensors, ShardClosesWhenExactlyFull)
{
  std::string dir = slim_test_make_tmpdir ();
  GError *error = nullptr;
  SlimSafetensorsWriter *writer = slim_safetensors_writer_new (dir.c_str (), "x", 100, &error);
  SlimTensor *a = make_bytes_tensor ("a", 60);
  SlimTensor *b = make_bytes_tensor ("b", 40);
  SlimTensor *c = make_bytes_tensor ("c", 39);
  SlimTensor *d = make_bytes_tensor ("d", 60);
  for (SlimTensor *t : { a, b, c, d })
    ASSERT_TRUE (slim_safetensors_writer_add (writer, t, &error));
  ASSERT_TRUE (slim_safetensors_writer_finish (writer, &error));
  g_object_unref (writer);
  // a(60) + b(40) = 100 >= 100: b starts shard 2; b(40) + c(39) = 79 < 100: same
  // shard; 79 + d(60) >= 100: d starts shard 3.
  SlimSafetensors *s1
      = slim_safetensors_open ((dir + "/x-00001-of-00003.safetensors").c_str (), &error);
  SlimSafetensors *s2
      = slim_safetensors_open ((dir + "/x-00002-of-00003.safetensors").c_str (), &error);
  SlimSafetensors *s3
      = slim_safetensors_open ((dir + "/x-00003-of-00003.safetensors").c_str (), &error);
  ASSERT_TRUE (s1 && s2 && s3);
  EXPECT_EQ (slim_safetensors_get_n_tensors (s1), 1u);
  EXPECT_TRUE (slim_safetensors_contains (s2, "b") && slim_safetensors_contains (s2, "c"));
  EXPECT_TRUE (slim_safetensors_contains (s3, "d"));
  for (SlimSafetensors *s : { s1, s2, s3 })
    g_object_unref (s);
  for (SlimTensor *t : { a, b, c, d })
    slim_tensor_unref (t);
}

TEST (Safetensors, PartSizeZeroWritesOneFileWithoutIndex)
{
  std::string dir = slim_test_make_tmpdir ();
  GError *error = nullptr;
  SlimSafetensorsWriter *writer
      = slim_safetensors_writer_new (dir.c_str (), "quant_model_weights", 0, &error);
  ASSERT_NE (writer, nullptr);
  SlimTensor *big = make_bytes_tensor ("big", 5000);
  SlimTensor *small = make_tensor ("small", SLIM_DTYPE_F16, { 7 }, 1.0f);
  ASSERT_TRUE (slim_safetensors_writer_add (writer, big, &error));
  ASSERT_TRUE (slim_safetensors_writer_add (writer, small, &error));
  for (const std::string &f : list_dir (dir))
    EXPECT_EQ (f[0], '.') << f << ": only hidden data files before finish";
  ASSERT_TRUE (slim_safetensors_writer_finish (writer, &error));
  g_object_unref (writer);
  EXPECT_EQ (list_dir (dir), std::vector<std::string>{ "quant_model_weights.safetensors" });
  SlimSafetensors *reader = slim_safetensors_open (dir.c_str (), &error);
  ASSERT_NE (reader, nullptr);
  EXPECT_EQ (slim_safetensors_get_n_tensors (reader), 2u);
  g_object_unref (reader);
  slim_tensor_unref (big);
  slim_tensor_unref (small);
}

// Resume: a writer whose state was saved after 3 tensors, which then
// wrote 2 more (rolling over to a new shard) and was killed, is continued
// by a new writer from that state.  The result must be byte-identical to
// an uninterrupted run (sizes and limit as in the rollover test above).
static void
copy_dir_files (const std::string &from, const std::string &to)
{
  for (const std::string &f : list_dir (from))
    {
      std::string bytes = read_bytes (from + "/" + f);
      ASSERT_TRUE (g_file_set_contents ((to + "/" + f).c_str (), bytes.data (),
                                        (gssize)bytes.size (), nullptr));
    }
}

TEST (Safetensors, WriterResumesFromASavedState)
{
  const std::vector<std::pair<std::string, gint64> > sizes
      = { { "a", 40 }, { "b", 40 }, { "c", 20 }, { "d", 30 }, { "e", 60 }, { "f", 10 } };
  std::vector<SlimTensor *> tensors;
  for (const auto &s : sizes)
    tensors.push_back (make_bytes_tensor (s.first.c_str (), s.second));
  std::string ref_dir = slim_test_make_tmpdir ();
  std::string dir = slim_test_make_tmpdir ();
  std::string backup = slim_test_make_tmpdir ();
  GError *error = nullptr;

  SlimSafetensorsWriter *ref = slim_safetensors_writer_new (ref_dir.c_str (), "m", 100, &error);
  slim_safetensors_writer_set_metadata (ref, "format", "pt");
  for (SlimTensor *t : tensors)
    ASSERT_TRUE (slim_safetensors_writer_add (ref, t, &error));
  ASSERT_TRUE (slim_safetensors_writer_finish (ref, &error));
  g_object_unref (ref);

  // the interrupted run: state after a, b, c (shard 2 open), then d and e
  // (e opens shard 3); the "kill" keeps the files as they are on disk
  SlimSafetensorsWriter *w = slim_safetensors_writer_new (dir.c_str (), "m", 100, &error);
  slim_safetensors_writer_set_metadata (w, "format", "pt");
  for (int i = 0; i < 3; i++)
    ASSERT_TRUE (slim_safetensors_writer_add (w, tensors[i], &error));
  GVariant *state = slim_safetensors_writer_save_state (w, &error);
  ASSERT_NE (state, nullptr) << error->message;
  for (int i = 3; i < 5; i++)
    ASSERT_TRUE (slim_safetensors_writer_add (w, tensors[i], &error));
  copy_dir_files (dir, backup);
  g_object_unref (w); // removes its data files, as a failed run does
  copy_dir_files (backup, dir);
  ASSERT_TRUE (g_file_test ((dir + "/.m-shard-00003.data").c_str (), G_FILE_TEST_EXISTS));

  // the state survives serialization (the checkpoint stores its bytes)
  GBytes *bytes = g_variant_get_data_as_bytes (state);
  GVariant *loaded
      = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("(a{ss}a(siaxtu)ut)"), bytes,
                                                      FALSE));
  SlimSafetensorsWriter *r = slim_safetensors_writer_new (dir.c_str (), "m", 100, &error);
  ASSERT_TRUE (slim_safetensors_writer_restore_state (r, loaded, &error))
      << (error ? error->message : "");
  EXPECT_EQ (slim_safetensors_writer_get_n_tensors (r), 3u);
  EXPECT_FALSE (g_file_test ((dir + "/.m-shard-00003.data").c_str (), G_FILE_TEST_EXISTS))
      << "a shard opened after the checkpoint is dropped";
  for (int i = 3; i < 6; i++)
    ASSERT_TRUE (slim_safetensors_writer_add (r, tensors[i], &error));
  ASSERT_TRUE (slim_safetensors_writer_finish (r, &error)) << (error ? error->message : "");
  g_object_unref (r);

  std::vector<std::string> files = list_dir (ref_dir);
  ASSERT_EQ (files, list_dir (dir));
  for (const std::string &f : files)
    EXPECT_EQ (read_bytes (ref_dir + "/" + f), read_bytes (dir + "/" + f)) << f;

  // a data file shorter than the state says is refused
  std::string dir2 = slim_test_make_tmpdir ();
  copy_dir_files (backup, dir2);
  ASSERT_EQ (truncate ((dir2 + "/.m-shard-00001.data").c_str (), 10), 0);
  SlimSafetensorsWriter *bad = slim_safetensors_writer_new (dir2.c_str (), "m", 100, &error);
  EXPECT_FALSE (slim_safetensors_writer_restore_state (bad, loaded, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_TRUNCATED));
  g_clear_error (&error);
  g_object_unref (bad);

  // a state of another type, or with a byte count that does not fit its
  // dtype and shape, is refused
  SlimSafetensorsWriter *bad2 = slim_safetensors_writer_new (dir2.c_str (), "m", 100, &error);
  GVariant *wrong = g_variant_ref_sink (g_variant_new ("(s)", "x"));
  EXPECT_FALSE (slim_safetensors_writer_restore_state (bad2, wrong, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  g_clear_error (&error);
  g_variant_unref (wrong);
  g_object_unref (bad2);
  SlimSafetensorsWriter *bad3 = slim_safetensors_writer_new (dir2.c_str (), "m", 100, &error);
  GVariant *lying = g_variant_ref_sink (g_variant_new_parsed (
      "(@a{ss} {}, [('a', 3, [int64 5], uint64 7, uint32 1)], uint32 1, uint64 7)"));
  EXPECT_FALSE (slim_safetensors_writer_restore_state (bad3, lying, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  g_clear_error (&error);
  g_variant_unref (lying);
  g_object_unref (bad3);

  g_variant_unref (loaded);
  g_bytes_unref (bytes);
  g_variant_unref (state);
  for (SlimTensor *t : tensors)
    slim_tensor_unref (t);
}

TEST (Safetensors, WriterIsDeterministicAndCleansUpWhenAbandoned)
{
  std::string dir1 = slim_test_make_tmpdir ();
  std::string dir2 = slim_test_make_tmpdir ();
  std::vector<SlimTensor *> tensors = { make_tensor ("z.last", SLIM_DTYPE_F32, { 8, 3 }, 1.0f),
                                        make_tensor ("a.first", SLIM_DTYPE_BF16, { 5 }, 2.0f),
                                        make_tensor ("m.mid", SLIM_DTYPE_I8, { 50 }, 3.0f) };
  for (const std::string &dir : { dir1, dir2 })
    {
      GError *error = nullptr;
      SlimSafetensorsWriter *writer = slim_safetensors_writer_new (dir.c_str (), "w", 64, &error);
      slim_safetensors_writer_set_metadata (writer, "b", "2");
      slim_safetensors_writer_set_metadata (writer, "a", "1");
      for (SlimTensor *t : tensors)
        ASSERT_TRUE (slim_safetensors_writer_add (writer, t, &error));
      ASSERT_TRUE (slim_safetensors_writer_finish (writer, &error));
      g_object_unref (writer);
    }
  std::vector<std::string> files = list_dir (dir1);
  ASSERT_EQ (files, list_dir (dir2));
  ASSERT_EQ (files.size (), 3u); // 96 >= 64 closes shard 1 before a.first, then a + m
  for (const std::string &f : files)
    EXPECT_EQ (read_bytes (dir1 + "/" + f), read_bytes (dir2 + "/" + f)) << f;
  // tensors are written in insertion order, not sorted
  std::string shard2 = read_bytes (dir1 + "/w-00002-of-00002.safetensors");
  EXPECT_LT (shard2.find ("a.first"), shard2.find ("m.mid"));
  EXPECT_LT (shard2.find ("__metadata__"), shard2.find ("a.first"));

  // a writer dropped before finish leaves nothing behind
  std::string dir3 = slim_test_make_tmpdir ();
  GError *error = nullptr;
  SlimSafetensorsWriter *writer = slim_safetensors_writer_new (dir3.c_str (), "w", 64, &error);
  for (SlimTensor *t : tensors)
    ASSERT_TRUE (slim_safetensors_writer_add (writer, t, &error));
  g_object_unref (writer);
  EXPECT_EQ (list_dir (dir3).size (), 0u);

  // invalid names and prefixes
  SlimTensor *reserved = make_tensor ("__metadata__", SLIM_DTYPE_F32, { 1 }, 0.0f);
  EXPECT_FALSE (slim_safetensors_write_file ((dir3 + "/r.safetensors").c_str (), &reserved, 1,
                                             nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  g_clear_error (&error);
  SlimTensor *twice[] = { tensors[0], tensors[0] };
  EXPECT_FALSE (
      slim_safetensors_write_file ((dir3 + "/r.safetensors").c_str (), twice, 2, nullptr, &error));
  g_clear_error (&error);
  EXPECT_EQ (slim_safetensors_writer_new (dir3.c_str (), "a/b", 0, &error), nullptr);
  g_clear_error (&error);
  EXPECT_EQ (list_dir (dir3).size (), 0u);
  slim_tensor_unref (reserved);
  for (SlimTensor *t : tensors)
    slim_tensor_unref (t);
}

TEST (Safetensors, UnalignedDataIsCopiedToAlignedMemory)
{
  // header padded so the data section starts at an odd offset
  std::string header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
  if ((8 + header.size ()) % 4 == 0)
    header += " ";
  std::string bytes = le64 (header.size ()) + header;
  const float values[] = { 1.5f, -2.0f, 3.25f };
  bytes.append (reinterpret_cast<const char *> (values), sizeof values);
  std::string path = slim_test_make_tmpdir () + "/odd.safetensors";
  write_bytes (path, bytes);
  GError *error = nullptr;
  SlimSafetensors *reader = slim_safetensors_open (path.c_str (), &error);
  ASSERT_NE (reader, nullptr) << (error ? error->message : "");
  SlimTensor *t = slim_safetensors_get_tensor (reader, "x", &error);
  ASSERT_NE (t, nullptr);
  EXPECT_EQ ((guintptr)slim_tensor_get_data (t) % 4, 0u);
  EXPECT_EQ (std::memcmp (slim_tensor_get_data (t), values, sizeof values), 0);
  slim_tensor_unref (t);
  g_object_unref (reader);
}

TEST (Safetensors, GapsAndEmptyTensorsAreAccepted)
{
  // [0,4) x, a gap, [8,12) y; two empty tensors anywhere
  std::string header = "{\"x\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"y\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                       "\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[2,2]},"
                       "\"e2\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[2,2]}}";
  std::string bytes = raw_file (header, 12);
  GError *error = nullptr;
  SlimSafetensorsHeader *parsed = slim_safetensors_parse_header (
      reinterpret_cast<const guint8 *> (bytes.data ()), bytes.size (), bytes.size (), &error);
  ASSERT_NE (parsed, nullptr) << (error ? error->message : "");
  EXPECT_EQ (parsed->entries->len, 4u);
  EXPECT_NE (slim_safetensors_header_lookup (parsed, "e2"), nullptr);
  EXPECT_EQ (slim_safetensors_header_lookup (parsed, "zz"), nullptr);
  slim_safetensors_header_free (parsed);
}

// ---- malformed files -------------------------------------------------------

std::string
repeat (const std::string &text, int n)
{
  std::string out;
  for (int i = 0; i < n; i++)
    out += text;
  return out;
}

// "k0":"","k1":"",... (distinct metadata keys)
std::string
numbered_pairs (int n)
{
  std::string out;
  for (int i = 0; i < n; i++)
    out += (i > 0 ? ",\"k" : "\"k") + std::to_string (i) + "\":\"\"";
  return out;
}

struct Malformed
{
  const char *what;
  std::string bytes;
  gint code;
};

std::vector<Malformed>
malformed_files ()
{
  const std::string ok_entry = "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";
  std::vector<Malformed> cases = {
    { "empty file", "", SLIM_FORMAT_ERROR_TRUNCATED },
    { "shorter than the length field", std::string ("\x10\x00\x00", 3),
      SLIM_FORMAT_ERROR_TRUNCATED },
    { "header length larger than the file", le64 (1000) + "{}", SLIM_FORMAT_ERROR_TRUNCATED },
    { "header length absurd", le64 (G_GUINT64_CONSTANT (1) << 62) + "{}",
      SLIM_FORMAT_ERROR_HEADER },
    { "header length just over the limit", le64 (SLIM_SAFETENSORS_MAX_HEADER_BYTES + 1ull) + "{}",
      SLIM_FORMAT_ERROR_HEADER },
    { "header length zero", le64 (0), SLIM_FORMAT_ERROR_HEADER },
    { "not UTF-8", raw_file ("{\"a\xff\":{" + ok_entry + "}}", 8), SLIM_FORMAT_ERROR_HEADER },
    { "NUL byte in the header", raw_file (std::string ("{\"a\0\":1}", 8), 0),
      SLIM_FORMAT_ERROR_HEADER },
    { "not JSON", raw_file ("hello world", 0), SLIM_FORMAT_ERROR_HEADER },
    { "truncated JSON", raw_file ("{\"a\":{" + ok_entry, 8), SLIM_FORMAT_ERROR_HEADER },
    { "header not an object", raw_file ("[1,2,3]", 0), SLIM_FORMAT_ERROR_HEADER },
    { "tensor entry not an object", raw_file ("{\"a\":[1,2]}", 0), SLIM_FORMAT_ERROR_HEADER },
    { "duplicate tensor keys", raw_file ("{\"a\":{" + ok_entry + "},\"a\":{" + ok_entry + "}}", 8),
      SLIM_FORMAT_ERROR_HEADER },
    { "duplicate field keys", raw_file ("{\"a\":{\"dtype\":\"I8\"," + ok_entry + "}}", 8),
      SLIM_FORMAT_ERROR_HEADER },
    { "nesting bomb", raw_file (std::string (100000, '[') + std::string (100000, ']'), 0),
      SLIM_FORMAT_ERROR_HEADER },
    { "comment (json-glib would accept it)", raw_file ("{/* c */\"a\":{" + ok_entry + "}}", 8),
      SLIM_FORMAT_ERROR_HEADER },
    { "offset beyond int64",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,"
                "18446744073709551624]}}",
                8),
      SLIM_FORMAT_ERROR_OFFSETS },
    { "dimension beyond int64",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],"
                "\"data_offsets\":[0,8]}}",
                8),
      SLIM_FORMAT_ERROR_SHAPE },
    { "leading zero (not JSON)",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8),
      SLIM_FORMAT_ERROR_HEADER },
    { "escaped NUL in a name", raw_file ("{\"a\\u0000b\":{" + ok_entry + "}}", 8),
      SLIM_FORMAT_ERROR_HEADER },
    { "unpaired surrogate", raw_file ("{\"a\\ud800\":{" + ok_entry + "}}", 8),
      SLIM_FORMAT_ERROR_HEADER },
    { "data after the object", raw_file ("{\"a\":{" + ok_entry + "}} {}", 8),
      SLIM_FORMAT_ERROR_HEADER },
    { "duplicate metadata", raw_file ("{\"__metadata__\":{},\"__metadata__\":{}}", 0),
      SLIM_FORMAT_ERROR_HEADER },
    { "deep unknown field",
      raw_file ("{\"a\":{\"x\":" + std::string (50000, '[') + std::string (50000, ']') + ","
                    + ok_entry + "}}",
                8),
      SLIM_FORMAT_ERROR_HEADER },
    { "metadata not an object", raw_file ("{\"__metadata__\":[\"x\"]}", 0),
      SLIM_FORMAT_ERROR_HEADER },
    { "metadata value not a string", raw_file ("{\"__metadata__\":{\"k\":1}}", 0),
      SLIM_FORMAT_ERROR_HEADER },
    { "unknown dtype",
      raw_file ("{\"a\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
      SLIM_FORMAT_ERROR_DTYPE },
    { "missing dtype", raw_file ("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
      SLIM_FORMAT_ERROR_DTYPE },
    { "dtype not a string",
      raw_file ("{\"a\":{\"dtype\":5,\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
      SLIM_FORMAT_ERROR_DTYPE },
    { "negative dimension",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8),
      SLIM_FORMAT_ERROR_SHAPE },
    { "fractional dimension",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8),
      SLIM_FORMAT_ERROR_SHAPE },
    { "shape product overflow",
      raw_file ("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,2],"
                "\"data_offsets\":[0,8]}}",
                8),
      SLIM_FORMAT_ERROR_SHAPE },
    { "byte size overflow",
      raw_file ("{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
                "\"data_offsets\":[0,8]}}",
                8),
      SLIM_FORMAT_ERROR_SHAPE },
    { "seven dimensions",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8),
      SLIM_FORMAT_ERROR_SHAPE },
    { "a million dimensions",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1" + repeat (",1", 1000000)
                    + "],\"data_offsets\":[0,8]}}",
                8),
      SLIM_FORMAT_ERROR_SHAPE },
    { "metadata beyond 4096 entries",
      raw_file ("{\"__metadata__\":{" + numbered_pairs (4097) + "}}", 0),
      SLIM_FORMAT_ERROR_HEADER },
    { "missing shape", raw_file ("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8),
      SLIM_FORMAT_ERROR_SHAPE },
    { "missing data_offsets", raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8),
      SLIM_FORMAT_ERROR_OFFSETS },
    { "three data_offsets",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8),
      SLIM_FORMAT_ERROR_OFFSETS },
    { "negative offset",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8),
      SLIM_FORMAT_ERROR_OFFSETS },
    { "offsets beyond the file",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 8),
      SLIM_FORMAT_ERROR_OFFSETS },
    { "begin after end",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8),
      SLIM_FORMAT_ERROR_OFFSETS },
    { "offsets not matching dtype x shape",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
      SLIM_FORMAT_ERROR_OFFSETS },
    { "overlapping tensors",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12),
      SLIM_FORMAT_ERROR_OFFSETS },
    { "aliased tensors",
      raw_file ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                8),
      SLIM_FORMAT_ERROR_OFFSETS },
  };
  return cases;
}

TEST (Safetensors, MalformedHeadersAreRejectedFromMemory)
{
  std::vector<Malformed> cases = malformed_files ();
  ASSERT_GE (cases.size (), 15u);
  for (const Malformed &c : cases)
    {
      GError *error = nullptr;
      SlimSafetensorsHeader *header
          = slim_safetensors_parse_header (reinterpret_cast<const guint8 *> (c.bytes.data ()),
                                           c.bytes.size (), c.bytes.size (), &error);
      EXPECT_EQ (header, nullptr) << c.what;
      slim_safetensors_header_free (header);
      ASSERT_NE (error, nullptr) << c.what;
      EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, c.code))
          << c.what << ": code " << error->code << " (expected " << c.code
          << "): " << error->message;
      g_clear_error (&error);
    }
}

TEST (Safetensors, MalformedFilesAreRejectedByOpenAndInspect)
{
  std::string dir = slim_test_make_tmpdir ();
  int k = 0;
  for (const Malformed &c : malformed_files ())
    {
      std::string path = dir + "/bad" + std::to_string (k++) + ".safetensors";
      write_bytes (path, c.bytes);
      GError *error = nullptr;
      SlimSafetensors *reader = slim_safetensors_open (path.c_str (), &error);
      EXPECT_EQ (reader, nullptr) << c.what;
      ASSERT_NE (error, nullptr) << c.what;
      EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, c.code))
          << c.what << ": " << error->message;
      EXPECT_NE (std::string (error->message).find (path), std::string::npos)
          << "the message names the file";
      g_clear_error (&error);

      std::string out, err;
      int status = slim_test_run_cli ({ "inspect", path }, &out, &err);
      EXPECT_EQ (status, 1) << c.what << "\n" << err;
      EXPECT_EQ (std::count (err.begin (), err.end (), '\n'), 1) << c.what << ": " << err;
      EXPECT_EQ (err.rfind ("slimflow inspect: ", 0), 0u) << err;
      EXPECT_EQ (err.find ("Sanitizer"), std::string::npos) << err;
      EXPECT_EQ (err.find ("runtime error"), std::string::npos) << err;
    }
}

// A valid file cut at every length fails cleanly (the last byte belongs to
// the last tensor, so no prefix is a valid file); byte mutations of the
// header never crash (ASan / UBSan would report it).
TEST (Safetensors, TruncationsAndMutationsNeverCrash)
{
  std::string dir = slim_test_make_tmpdir ();
  std::string path = dir + "/small.safetensors";
  SlimTensor *tensors[] = { make_tensor ("a", SLIM_DTYPE_F32, { 2, 3 }, 1.0f),
                            make_tensor ("b", SLIM_DTYPE_BF16, { 5 }, 2.0f),
                            make_tensor ("c", SLIM_DTYPE_I8, { 3 }, 3.0f) };
  GError *error = nullptr;
  ASSERT_TRUE (slim_safetensors_write_file (path.c_str (), tensors, 3, nullptr, &error));
  std::string bytes = read_bytes (path);
  const guint8 *data = reinterpret_cast<const guint8 *> (bytes.data ());
  SlimSafetensorsHeader *whole
      = slim_safetensors_parse_header (data, bytes.size (), bytes.size (), &error);
  ASSERT_NE (whole, nullptr);
  guint64 header_end = whole->data_offset_bytes;
  slim_safetensors_header_free (whole);
  for (gsize length = 0; length < bytes.size (); length++)
    {
      std::vector<guint8> prefix (data, data + length); // exact-size copy: ASan sees overreads
      SlimSafetensorsHeader *header = slim_safetensors_parse_header (
          prefix.empty () ? nullptr : prefix.data (), length, length, &error);
      EXPECT_EQ (header, nullptr) << "prefix of " << length << " bytes";
      ASSERT_NE (error, nullptr);
      EXPECT_EQ (error->domain, SLIM_FORMAT_ERROR);
      g_clear_error (&error);
    }
  guint n_accepted = 0, n_rejected = 0;
  for (gsize pos = 8; pos < header_end; pos++)
    for (guint8 value : { 0x00, 0x22, 0x7b, 0x5b, 0x5d, 0x39, 0x2d, 0xff, 0x2c, 0x5c })
      {
        std::vector<guint8> mutated (data, data + bytes.size ());
        mutated[pos] = value;
        SlimSafetensorsHeader *header = slim_safetensors_parse_header (
            mutated.data (), mutated.size (), mutated.size (), &error);
        if (header != nullptr)
          n_accepted++;
        else
          {
            n_rejected++;
            EXPECT_EQ (error->domain, SLIM_FORMAT_ERROR);
          }
        slim_safetensors_header_free (header);
        g_clear_error (&error);
      }
  EXPECT_GT (n_rejected, 0u);
  EXPECT_GT (n_accepted, 0u) << "e.g. mutations of the padding or of a name";
  for (SlimTensor *t : tensors)
    slim_tensor_unref (t);
}

// ---- sharded models with broken indexes ----------------------------------

class BrokenIndex : public ::testing::Test
{
protected:
  void
  SetUp () override
  {
    dir_ = slim_test_make_tmpdir ();
    GError *error = nullptr;
    SlimSafetensorsWriter *writer
        = slim_safetensors_writer_new (dir_.c_str (), "model", 16, &error);
    for (const char *name : { "a", "b", "c" })
      {
        SlimTensor *t = make_bytes_tensor (name, 10);
        ASSERT_TRUE (slim_safetensors_writer_add (writer, t, &error));
        slim_tensor_unref (t);
      }
    ASSERT_TRUE (slim_safetensors_writer_finish (writer, &error));
    g_object_unref (writer);
    index_ = dir_ + "/model.safetensors.index.json";
  }

  void
  expect_open_fails (const std::string &index_text, gint domain_code, GQuark domain)
  {
    write_bytes (index_, index_text);
    GError *error = nullptr;
    SlimSafetensors *reader = slim_safetensors_open (dir_.c_str (), &error);
    EXPECT_EQ (reader, nullptr) << index_text;
    ASSERT_NE (error, nullptr);
    EXPECT_TRUE (g_error_matches (error, domain, domain_code)) << error->message;
    g_clear_error (&error);
    std::string err;
    EXPECT_EQ (slim_test_run_cli ({ "inspect", dir_ }, nullptr, &err), 1) << err;
    EXPECT_EQ (std::count (err.begin (), err.end (), '\n'), 1) << err;
  }

  std::string dir_;
  std::string index_;
};

TEST_F (BrokenIndex, ValidIndexOpens)
{
  GError *error = nullptr;
  SlimSafetensors *reader = slim_safetensors_open (index_.c_str (), &error);
  ASSERT_NE (reader, nullptr) << (error ? error->message : "");
  EXPECT_EQ (slim_safetensors_get_n_files (reader), 3u);
  EXPECT_EQ (slim_safetensors_get_n_tensors (reader), 3u);
  g_object_unref (reader);
}

TEST_F (BrokenIndex, MissingShard)
{
  expect_open_fails ("{\"weight_map\":{\"a\":\"model-00001-of-00003.safetensors\","
                     "\"b\":\"model-00009-of-00009.safetensors\"}}",
                     SLIM_FORMAT_ERROR_MISSING_TENSOR, SLIM_FORMAT_ERROR);
}

TEST_F (BrokenIndex, TensorAbsentFromItsShard)
{
  expect_open_fails ("{\"weight_map\":{\"a\":\"model-00002-of-00003.safetensors\"}}",
                     SLIM_FORMAT_ERROR_MISSING_TENSOR, SLIM_FORMAT_ERROR);
}

TEST_F (BrokenIndex, ShardOutsideTheFolder)
{
  expect_open_fails ("{\"weight_map\":{\"a\":\"../model-00001-of-00003.safetensors\"}}",
                     SLIM_FORMAT_ERROR_INVALID, SLIM_FORMAT_ERROR);
}

TEST_F (BrokenIndex, NotJsonOrWrongShape)
{
  expect_open_fails ("{\"weight_map\":", SLIM_FORMAT_ERROR_INVALID, SLIM_FORMAT_ERROR);
  expect_open_fails ("{\"metadata\":{}}", SLIM_FORMAT_ERROR_INVALID, SLIM_FORMAT_ERROR);
  expect_open_fails ("{\"weight_map\":{\"a\":7}}", SLIM_FORMAT_ERROR_INVALID, SLIM_FORMAT_ERROR);
  expect_open_fails (std::string (5000, '{'), SLIM_FORMAT_ERROR_INVALID, SLIM_FORMAT_ERROR);
}

TEST_F (BrokenIndex, MalformedShard)
{
  write_bytes (dir_ + "/model-00002-of-00003.safetensors", raw_file ("{\"b\":", 10));
  GError *error = nullptr;
  EXPECT_EQ (slim_safetensors_open (dir_.c_str (), &error), nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER));
  g_clear_error (&error);
}

TEST (Safetensors, FolderResolution)
{
  std::string dir = slim_test_make_tmpdir ();
  SlimTensor *t = make_bytes_tensor ("t", 4);
  GError *error = nullptr;
  ASSERT_TRUE (slim_safetensors_write_file ((dir + "/weights.safetensors").c_str (), &t, 1, nullptr,
                                            &error));
  SlimSafetensors *reader = slim_safetensors_open (dir.c_str (), &error);
  ASSERT_NE (reader, nullptr) << "a single .safetensors file is picked";
  g_object_unref (reader);
  ASSERT_TRUE (
      slim_safetensors_write_file ((dir + "/other.safetensors").c_str (), &t, 1, nullptr, &error));
  EXPECT_EQ (slim_safetensors_open (dir.c_str (), &error), nullptr) << "two candidates";
  EXPECT_TRUE (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT));
  g_clear_error (&error);
  ASSERT_TRUE (
      slim_safetensors_write_file ((dir + "/model.safetensors").c_str (), &t, 1, nullptr, &error));
  reader = slim_safetensors_open (dir.c_str (), &error);
  EXPECT_NE (reader, nullptr) << "model.safetensors wins";
  g_clear_object (&reader);
  EXPECT_EQ (slim_safetensors_open ((dir + "/absent.safetensors").c_str (), &error), nullptr);
  EXPECT_EQ (error->domain, G_FILE_ERROR);
  g_clear_error (&error);
  slim_tensor_unref (t);
}

// ---- the shared models -------------------------------------------------------

gint64
config_int (JsonObject *config, const char *key)
{
  EXPECT_TRUE (json_object_has_member (config, key)) << key;
  return json_object_get_int_member (config, key);
}

TEST (Safetensors, Stories260KShapesMatchItsConfig)
{
  std::string dir = slim_test_shared_path ("models/stories260K");
  JsonNode *root = parse_json_file (dir + "/config.json");
  ASSERT_NE (root, nullptr);
  JsonObject *config = json_node_get_object (root);
  gint64 hidden = config_int (config, "hidden_size");
  gint64 inter = config_int (config, "intermediate_size");
  gint64 n_layers = config_int (config, "num_hidden_layers");
  gint64 n_heads = config_int (config, "num_attention_heads");
  gint64 n_kv = config_int (config, "num_key_value_heads");
  gint64 vocab = config_int (config, "vocab_size");
  gint64 head_dim = json_object_has_member (config, "head_dim") ? config_int (config, "head_dim")
                                                                : hidden / n_heads;
  std::map<std::string, std::vector<gint64> > expected;
  expected["model.embed_tokens.weight"] = { vocab, hidden };
  expected["model.norm.weight"] = { hidden };
  for (gint64 l = 0; l < n_layers; l++)
    {
      std::string p = "model.layers." + std::to_string (l) + ".";
      expected[p + "input_layernorm.weight"] = { hidden };
      expected[p + "post_attention_layernorm.weight"] = { hidden };
      expected[p + "self_attn.q_proj.weight"] = { n_heads * head_dim, hidden };
      expected[p + "self_attn.k_proj.weight"] = { n_kv * head_dim, hidden };
      expected[p + "self_attn.v_proj.weight"] = { n_kv * head_dim, hidden };
      expected[p + "self_attn.o_proj.weight"] = { hidden, n_heads * head_dim };
      expected[p + "mlp.gate_proj.weight"] = { inter, hidden };
      expected[p + "mlp.up_proj.weight"] = { inter, hidden };
      expected[p + "mlp.down_proj.weight"] = { hidden, inter };
    }
  if (!json_object_get_boolean_member_with_default (config, "tie_word_embeddings", FALSE))
    expected["lm_head.weight"] = { vocab, hidden };
  json_node_unref (root);
  EXPECT_EQ (expected.size (), 47u);

  GError *error = nullptr;
  SlimSafetensors *reader = slim_safetensors_open (dir.c_str (), &error);
  ASSERT_NE (reader, nullptr) << (error ? error->message : "");
  EXPECT_EQ (slim_safetensors_get_n_tensors (reader), expected.size ());
  guint64 total = 0;
  for (const auto &e : expected)
    {
      SlimDType dtype;
      guint n_dims;
      gint64 shape[SLIM_TENSOR_MAX_DIMS];
      ASSERT_TRUE (slim_safetensors_get_info (reader, e.first.c_str (), &dtype, &n_dims, shape))
          << e.first;
      EXPECT_EQ (dtype, SLIM_DTYPE_F32);
      EXPECT_EQ (std::vector<gint64> (shape, shape + n_dims), e.second) << e.first;
      gint64 n = 1;
      for (gint64 d : e.second)
        n *= d;
      total += (guint64)n * 4;
    }
  EXPECT_EQ (slim_safetensors_get_total_bytes (reader), total);
  g_object_unref (reader);

  // inspect lists all of them with their shapes
  std::string out, err;
  ASSERT_EQ (slim_test_run_cli ({ "inspect", dir }, &out, &err), 0) << err;
  for (const auto &e : expected)
    {
      std::string shape = "[";
      for (gsize k = 0; k < e.second.size (); k++)
        shape += (k > 0 ? ", " : "") + std::to_string (e.second[k]);
      shape += "]";
      gsize at = out.find ("  " + e.first + " ");
      ASSERT_NE (at, std::string::npos) << e.first;
      std::string line = out.substr (at, out.find ('\n', at) - at);
      EXPECT_NE (line.find (" " + shape + " "), std::string::npos) << line;
    }
  EXPECT_NE (out.find ("tensors: 47"), std::string::npos) << out;
  EXPECT_NE (out.find ("hidden_size=" + std::to_string (hidden)), std::string::npos) << out;
  EXPECT_NE (out.find ("total: 47 tensors, " + std::to_string (total) + " bytes"),
             std::string::npos)
      << out;
}

// The bf16 model is the f32 model rounded to bf16 (nearest even): its bytes
// must equal the reference conversion of the f32 values, exactly.
TEST (Safetensors, Stories260KBf16IsTheF32ModelRounded)
{
  GError *error = nullptr;
  SlimSafetensors *f32 = slim_safetensors_open (
      slim_test_shared_path ("models/stories260K/model.safetensors").c_str (), &error);
  ASSERT_NE (f32, nullptr) << (error ? error->message : "");
  SlimSafetensors *bf16 = slim_safetensors_open (
      slim_test_shared_path ("models/stories260K-bf16/model.safetensors").c_str (), &error);
  ASSERT_NE (bf16, nullptr) << (error ? error->message : "");
  ASSERT_EQ (slim_safetensors_get_n_tensors (f32), slim_safetensors_get_n_tensors (bf16));
  const SlimDTypeInfo *info = slim_dtype_get_info (SLIM_DTYPE_BF16);
  const char *const *names = slim_safetensors_get_names (f32);
  guint n_checked = 0;
  for (guint i = 0; names[i] != nullptr; i++)
    {
      SlimTensor *a = slim_safetensors_get_tensor (f32, names[i], &error);
      SlimTensor *b = slim_safetensors_get_tensor (bf16, names[i], &error);
      ASSERT_TRUE (a != nullptr && b != nullptr) << names[i];
      ASSERT_EQ (slim_tensor_get_dtype (b), SLIM_DTYPE_BF16);
      gsize n = (gsize)slim_tensor_get_n_elements (a);
      ASSERT_EQ ((gsize)slim_tensor_get_n_elements (b), n);
      std::vector<guint16> rounded (n);
      info->from_f32_ref (static_cast<const float *> (slim_tensor_get_data (a)), rounded.data (),
                          n);
      EXPECT_EQ (std::memcmp (rounded.data (), slim_tensor_get_data (b), n * 2), 0) << names[i];
      // and the f32 view of the bf16 tensor is the exact widening
      SlimTensor *widened = slim_safetensors_get_tensor_f32 (bf16, names[i], &error);
      ASSERT_NE (widened, nullptr);
      EXPECT_EQ (slim_tensor_get_dtype (widened), SLIM_DTYPE_F32);
      std::vector<float> expected (n);
      info->to_f32_ref (rounded.data (), expected.data (), n);
      EXPECT_EQ (std::memcmp (expected.data (), slim_tensor_get_data (widened), n * 4), 0);
      slim_tensor_unref (widened);
      slim_tensor_unref (a);
      slim_tensor_unref (b);
      n_checked++;
    }
  EXPECT_EQ (n_checked, 47u);
  g_object_unref (f32);
  g_object_unref (bf16);
}

TEST (Safetensors, InspectUsage)
{
  std::string out, err;
  EXPECT_EQ (slim_test_run_cli ({ "inspect" }, &out, &err), 2);
  EXPECT_EQ (slim_test_run_cli ({ "inspect", "a", "b" }, &out, &err), 2);
  EXPECT_EQ (slim_test_run_cli ({ "inspect", "--bogus", "x" }, &out, &err), 2);
  EXPECT_EQ (slim_test_run_cli ({ "inspect", "--help" }, &out, &err), 0);
  EXPECT_NE (out.find ("PATH"), std::string::npos);
  EXPECT_EQ (slim_test_run_cli ({ "inspect", "/nonexistent/model" }, &out, &err), 1);
  EXPECT_EQ (std::count (err.begin (), err.end (), '\n'), 1) << err;
  // a folder with a malformed config.json
  std::string dir = slim_test_make_tmpdir ();
  SlimTensor *t = make_bytes_tensor ("t", 4);
  ASSERT_TRUE (
      slim_safetensors_write_file ((dir + "/model.safetensors").c_str (), &t, 1, nullptr, nullptr));
  slim_tensor_unref (t);
  write_bytes (dir + "/config.json", "{\"hidden_size\": 64,");
  EXPECT_EQ (slim_test_run_cli ({ "inspect", dir }, &out, &err), 1);
  EXPECT_NE (err.find ("config.json"), std::string::npos) << err;
  write_bytes (dir + "/config.json", "{\"hidden_size\": 64, \"model_type\": \"llama\"}");
  EXPECT_EQ (slim_test_run_cli ({ "inspect", dir }, &out, &err), 0) << err;
  EXPECT_NE (out.find ("model_type=llama"), std::string::npos) << out;
}

} // namespace

// The one JSON string escaper (slim-json.h): safetensors headers, indexes
// and schemas keep UTF-8; the ascend description escapes it as Python's
// json.dump (ensure_ascii) does, with surrogate pairs above U+FFFF.
TEST (Json, StringEscapingInBothModes)
{
  const char *text = "a\"b\\c\n\r\t\b\f\x01 \x7f é 😀";
  GString *utf8 = g_string_new (nullptr);
  GString *ascii = g_string_new (nullptr);
  slim_json_append_string (utf8, text, FALSE);
  slim_json_append_string (ascii, text, TRUE);
  EXPECT_STREQ (utf8->str, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001 \x7f é 😀\"");
  EXPECT_STREQ (ascii->str, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001 \x7f \\u00e9 \\ud83d\\ude00\"");
  // both parse back to the original text
  for (GString *s : { utf8, ascii })
    {
      JsonParser *parser = json_parser_new ();
      ASSERT_TRUE (json_parser_load_from_data (parser, s->str, -1, nullptr)) << s->str;
      EXPECT_STREQ (json_node_get_string (json_parser_get_root (parser)), text);
      g_object_unref (parser);
    }
  g_string_free (utf8, TRUE);
  g_string_free (ascii, TRUE);
}
