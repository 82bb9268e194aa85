// SPDX-License-Identifier: Apache-2.0
//
// test-config-writer.cpp: SlimConfigNode trees written back as YAML
// (slim-config-writer.h): every example config round-trips to an equal
// tree, and SET / REMOVE / INSERT edits land where their paths say, with
// an error at the edit's origin for a path that is not there.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "slim-config-writer.h"
#include "slim-test.h"

namespace
{

SlimConfigNode *
parse (const std::string &text, const char *name = "t.yaml")
{
  GError *error = nullptr;
  SlimConfigNode *node = slim_config_parse_data (text.data (), text.size (), name, &error);
  EXPECT_NE (node, nullptr) << (error != nullptr ? error->message : "");
  g_clear_error (&error);
  return node;
}

std::string
write (SlimConfigNode *root, const SlimConfigEdit *edits, guint n, GError **error)
{
  char *text = slim_config_write (root, edits, n, error);
  std::string s = text != nullptr ? text : "";
  g_free (text);
  return s;
}

} // namespace

TEST (ConfigWriter, ExamplesRoundTrip)
{
  std::string dir = slim_test_source_dir () + "/examples";
  GDir *d = g_dir_open (dir.c_str (), 0, nullptr);
  ASSERT_NE (d, nullptr);
  int n = 0;
  for (const char *name; (name = g_dir_read_name (d)) != nullptr;)
    {
      if (!g_str_has_suffix (name, ".yaml"))
        continue;
      std::string path = dir + "/" + name;
      GError *error = nullptr;
      SlimConfigNode *root = slim_config_parse_file (path.c_str (), &error);
      ASSERT_NE (root, nullptr) << path;
      std::string text = write (root, nullptr, 0, &error);
      ASSERT_FALSE (text.empty ()) << path;
      SlimConfigNode *back = parse (text);
      ASSERT_NE (back, nullptr) << text;
      EXPECT_TRUE (slim_config_node_equal (root, back)) << path << "\n" << text;
      slim_config_node_unref (back);
      slim_config_node_unref (root);
      n++;
    }
  g_dir_close (d);
  EXPECT_GE (n, 10);
}

TEST (ConfigWriter, QuotedScalarsStayStrings)
{
  SlimConfigNode *root = parse ("a: \"5\"\nb: 5\nc: \"true\"\nd: ~\ne: [x, \"y z\"]\n");
  GError *error = nullptr;
  std::string text = write (root, nullptr, 0, &error);
  SlimConfigNode *back = parse (text);
  EXPECT_TRUE (slim_config_node_equal (root, back)) << text;
  SlimConfigNode *a = slim_config_node_lookup (back, "a");
  EXPECT_EQ (slim_config_node_get_scalar_style (a), SLIM_CONFIG_SCALAR_QUOTED);
  EXPECT_EQ (slim_config_node_get_scalar_style (slim_config_node_lookup (back, "b")),
             SLIM_CONFIG_SCALAR_PLAIN);
  EXPECT_TRUE (slim_config_node_is_null (slim_config_node_lookup (back, "d")));
  slim_config_node_unref (back);
  slim_config_node_unref (root);
}

TEST (ConfigWriter, EditsApplyAtTheirPaths)
{
  SlimConfigNode *root
      = parse ("spec:\n  process:\n    - type: a\n      k: 1\n    - type: b\n  dataset: x\n");
  SlimConfigNode *entry = parse ("type: c\n");
  SlimConfigNode *two = parse ("2\n");
  SlimConfigNode *yes = parse ("yes_value\n");
  SlimConfigEdit edits[] = {
    { SLIM_CONFIG_EDIT_SET, "spec.process[0].k", two, nullptr },     // replace
    { SLIM_CONFIG_EDIT_SET, "spec.process[0].added", yes, nullptr }, // add a key
    { SLIM_CONFIG_EDIT_REMOVE, "spec.dataset", nullptr, nullptr },   // drop a key
    { SLIM_CONFIG_EDIT_INSERT, "spec.process[1]", entry, nullptr },  // before b
    { SLIM_CONFIG_EDIT_INSERT, "spec.process[2]", entry, nullptr },  // append
  };
  GError *error = nullptr;
  std::string text = write (root, edits, G_N_ELEMENTS (edits), &error);
  ASSERT_EQ (error, nullptr) << error->message;
  SlimConfigNode *expected = parse ("spec:\n  process:\n    - type: a\n      k: 2\n"
                                    "      added: yes_value\n    - type: c\n    - type: b\n"
                                    "    - type: c\n");
  SlimConfigNode *back = parse (text);
  EXPECT_TRUE (slim_config_node_equal (expected, back)) << text;
  for (SlimConfigNode *n : { root, entry, two, yes, expected, back })
    slim_config_node_unref (n);
}

TEST (ConfigWriter, MissingPathIsAnErrorAtTheOrigin)
{
  SlimConfigNode *root = parse ("spec:\n  process:\n    - type: a\n");
  SlimConfigNode *origin = parse ("x: 1\n", "matrix.yaml");
  const char *const bad[] = { "spec.process[3]", "spec.nothing.deeper", "spec.process[0].k.j" };
  for (const char *path : bad)
    {
      SlimConfigEdit edit = { SLIM_CONFIG_EDIT_REMOVE, path, nullptr, origin };
      GError *error = nullptr;
      char *text = slim_config_write (root, &edit, 1, &error);
      EXPECT_EQ (text, nullptr) << path;
      ASSERT_NE (error, nullptr);
      EXPECT_TRUE (g_str_has_prefix (error->message, "matrix.yaml:1:1: ")) << error->message;
      EXPECT_NE (strstr (error->message, path), nullptr) << error->message;
      g_clear_error (&error);
    }
  SlimConfigEdit insert = { SLIM_CONFIG_EDIT_INSERT, "spec.process[2]", origin, origin };
  GError *error = nullptr;
  EXPECT_EQ (slim_config_write (root, &insert, 1, &error), nullptr);
  g_clear_error (&error);
  slim_config_node_unref (origin);
  slim_config_node_unref (root);
}
