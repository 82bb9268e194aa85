// SPDX-License-Identifier: Apache-2.0
//
// test-text.cpp: slim_text_read_file (slim-text.h), the text reader of the
// "text" dataset and `slimflow eval`: CRLF -> LF with a lone CR kept, the
// size limit, and the errors on an empty, NUL-holding or missing file.
#include <string>

#include "slim-plugin.h"
#include "slim-test.h"

namespace
{

// Writes bytes (NULs included) to a fresh file; returns its path.
std::string
write_bytes (const std::string &name, const std::string &bytes)
{
  static std::string dir = slim_test_make_tmpdir ();
  std::string path = dir + "/" + name;
  GError *error = nullptr;
  EXPECT_TRUE (g_file_set_contents (path.c_str (), bytes.data (), (gssize)bytes.size (), &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  return path;
}

// Reads path; on success returns the text, else records the error.
std::string
read_ok (const std::string &path, gsize max_bytes = SLIM_TEXT_DEFAULT_MAX_BYTES)
{
  GError *error = nullptr;
  char *text = slim_text_read_file (path.c_str (), max_bytes, &error);
  EXPECT_NE (text, nullptr) << (error ? error->message : "");
  EXPECT_EQ (error, nullptr);
  g_clear_error (&error);
  std::string result = text != nullptr ? text : "";
  g_free (text);
  return result;
}

void
expect_read_error (
    const std::string &path, gsize max_bytes, GQuark domain, int code, const std::string &fragment)
{
  GError *error = nullptr;
  char *text = slim_text_read_file (path.c_str (), max_bytes, &error);
  EXPECT_EQ (text, nullptr) << path;
  g_free (text);
  ASSERT_NE (error, nullptr) << path;
  GErrorPtr owned (error);
  EXPECT_TRUE (g_error_matches (error, domain, code)) << error->message;
  EXPECT_NE (std::string (error->message).find (fragment), std::string::npos) << error->message;
  EXPECT_NE (std::string (error->message).find (path), std::string::npos) << error->message;
}

} // namespace

TEST (TextRead, CrlfBecomesLf)
{
  EXPECT_EQ (read_ok (write_bytes ("crlf.txt", "one\r\ntwo\r\nthree\r\n")), "one\ntwo\nthree\n");
  // LF-only text comes back as it is.
  EXPECT_EQ (read_ok (write_bytes ("lf.txt", "one\ntwo\n")), "one\ntwo\n");
  // Mixed ends; CRLF as the very first and last bytes.
  EXPECT_EQ (read_ok (write_bytes ("mixed.txt", "\r\na\nb\r\n")), "\na\nb\n");
}

TEST (TextRead, LoneCrIsKept)
{
  // A CR not followed by LF stays: in the middle, doubled before an LF
  // (only the CR next to the LF goes) and as the last byte.
  EXPECT_EQ (read_ok (write_bytes ("cr.txt", "a\rb\r\r\nc\r")), "a\rb\r\nc\r");
  EXPECT_EQ (read_ok (write_bytes ("only-cr.txt", "\r")), "\r");
}

TEST (TextRead, KeepsUtf8Bytes)
{
  // Multi-byte UTF-8 passes unchanged (validity is the tokenizer's check).
  const std::string text = "caf\xc3\xa9 \xe2\x82\xac\r\n";
  EXPECT_EQ (read_ok (write_bytes ("utf8.txt", text)), "caf\xc3\xa9 \xe2\x82\xac\n");
}

TEST (TextRead, SizeLimit)
{
  const std::string path = write_bytes ("ten.txt", "0123456789");
  // The limit is inclusive: a 10-byte file fits in 10 bytes, not in 9.
  EXPECT_EQ (read_ok (path, 10), "0123456789");
  expect_read_error (path, 9, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "too large");
  // The limit applies to the file, before CRLF pairs shrink it.
  const std::string crlf = write_bytes ("crlf-limit.txt", "ab\r\n");
  expect_read_error (crlf, 3, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "too large");
}

TEST (TextRead, EmptyIsAnError)
{
  expect_read_error (write_bytes ("empty.txt", ""), SLIM_TEXT_DEFAULT_MAX_BYTES, SLIM_FORMAT_ERROR,
                     SLIM_FORMAT_ERROR_INVALID, "empty");
  // Nothing left once CRLF is LF is still text ("\n"), not empty.
  EXPECT_EQ (read_ok (write_bytes ("newline.txt", "\r\n")), "\n");
}

TEST (TextRead, NulByteIsAnError)
{
  expect_read_error (write_bytes ("nul.txt", std::string ("ab\0cd", 5)),
                     SLIM_TEXT_DEFAULT_MAX_BYTES, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                     "NUL");
}

TEST (TextRead, MissingFileIsAFileError)
{
  const std::string path = slim_test_make_tmpdir () + "/absent.txt";
  expect_read_error (path, SLIM_TEXT_DEFAULT_MAX_BYTES, G_FILE_ERROR, G_FILE_ERROR_NOENT, "");
}
