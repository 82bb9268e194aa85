// SPDX-License-Identifier: Apache-2.0
//
// gguf-reader.cpp: the tests' GGUF reader (see gguf-reader.hpp).
#include "gguf-reader.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

namespace slim_test
{

namespace
{

// IEEE half -> float, written out (not slimflow's converter).
float
half_to_float (uint16_t h)
{
  int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0)
    v = std::ldexp ((float)mant, -24);
  else if (exp == 31)
    v = mant != 0 ? NAN : INFINITY;
  else
    v = std::ldexp ((float)(mant | 0x400), exp - 25);
  return sign ? -v : v;
}

struct Cursor
{
  const std::vector<uint8_t> &b;
  uint64_t pos = 0;

  void
  need (uint64_t n)
  {
    if (n > b.size () || pos > b.size () - n)
      throw std::runtime_error ("truncated at byte " + std::to_string (pos));
  }
  template <typename T>
  T
  get ()
  {
    need (sizeof (T));
    T v;
    std::memcpy (&v, b.data () + pos, sizeof (T)); // little-endian host (x86-64)
    pos += sizeof (T);
    return v;
  }
  std::string
  str ()
  {
    uint64_t n = get<uint64_t> ();
    need (n);
    std::string s ((const char *)b.data () + pos, n);
    pos += n;
    return s;
  }
};

void
read_scalar (Cursor &c, uint32_t type, GgufValue &v)
{
  switch (type)
    {
    case 0:
      v.u.push_back (c.get<uint8_t> ());
      break;
    case 1:
      v.i.push_back (c.get<int8_t> ());
      break;
    case 2:
      v.u.push_back (c.get<uint16_t> ());
      break;
    case 3:
      v.i.push_back (c.get<int16_t> ());
      break;
    case 4:
      v.u.push_back (c.get<uint32_t> ());
      break;
    case 5:
      v.i.push_back (c.get<int32_t> ());
      break;
    case 6:
      v.f.push_back (c.get<float> ());
      break;
    case 7:
      {
        uint8_t b = c.get<uint8_t> ();
        if (b > 1)
          throw std::runtime_error ("bool value " + std::to_string (b));
        v.u.push_back (b);
        break;
      }
    case 8:
      v.s.push_back (c.str ());
      break;
    case 10:
      v.u.push_back (c.get<uint64_t> ());
      break;
    case 11:
      v.i.push_back (c.get<int64_t> ());
      break;
    case 12:
      v.f.push_back (c.get<double> ());
      break;
    default:
      throw std::runtime_error ("unknown value type " + std::to_string (type));
    }
}

// Bytes per block and elements per block of a ggml type.
bool
type_block (uint32_t type, uint64_t *bytes, uint64_t *elems)
{
  switch (type)
    {
    case 0:
      *bytes = 4;
      *elems = 1;
      return true; // F32
    case 1:
      *bytes = 2;
      *elems = 1;
      return true; // F16
    case 2:
      *bytes = 18;
      *elems = 32;
      return true; // Q4_0
    case 3:
      *bytes = 20;
      *elems = 32;
      return true; // Q4_1
    case 8:
      *bytes = 34;
      *elems = 32;
      return true; // Q8_0
    case 12:
      *bytes = 144;
      *elems = 256;
      return true; // Q4_K
    case 14:
      *bytes = 210;
      *elems = 256;
      return true; // Q6_K
    default:
      return false;
    }
}

} // namespace

size_t
GgufValue::size () const
{
  return u.size () + i.size () + f.size () + s.size ();
}

const char *
ggml_type_name (uint32_t type)
{
  switch (type)
    {
    case 0:
      return "F32";
    case 1:
      return "F16";
    case 2:
      return "Q4_0";
    case 3:
      return "Q4_1";
    case 8:
      return "Q8_0";
    case 12:
      return "Q4_K";
    case 14:
      return "Q6_K";
    default:
      return "?";
    }
}

const GgufTensor *
GgufFile::find (const std::string &name) const
{
  auto it = index.find (name);
  return it == index.end () ? nullptr : &tensors[it->second];
}

const uint8_t *
GgufFile::data (const GgufTensor &t) const
{
  return bytes.data () + data_start + t.offset;
}

uint64_t
GgufFile::get_u (const std::string &key) const
{
  auto it = kv.find (key);
  if (it == kv.end () || it->second.is_array || it->second.u.size () != 1)
    throw std::runtime_error ("no unsigned key " + key);
  return it->second.u[0];
}

double
GgufFile::get_f (const std::string &key) const
{
  auto it = kv.find (key);
  if (it == kv.end () || it->second.is_array || it->second.f.size () != 1)
    throw std::runtime_error ("no float key " + key);
  return it->second.f[0];
}

std::string
GgufFile::get_s (const std::string &key) const
{
  auto it = kv.find (key);
  if (it == kv.end () || it->second.is_array || it->second.s.size () != 1)
    throw std::runtime_error ("no string key " + key);
  return it->second.s[0];
}

std::vector<float>
GgufFile::dequantize (const GgufTensor &t) const
{
  uint64_t n = 1;
  for (uint64_t d : t.ne)
    n *= d;
  std::vector<float> out (n);
  const uint8_t *p = data (t);
  auto f16 = [] (const uint8_t *q) { return half_to_float ((uint16_t)(q[0] | (q[1] << 8))); };
  switch (t.type)
    {
    case 0:
      std::memcpy (out.data (), p, n * 4);
      break;
    case 1:
      for (uint64_t k = 0; k < n; k++)
        out[k] = f16 (p + 2 * k);
      break;
    case 8:
      for (uint64_t b = 0; b < n / 32; b++, p += 34)
        for (int j = 0; j < 32; j++)
          out[b * 32 + j] = f16 (p) * (float)(int8_t)p[2 + j];
      break;
    case 2:
      for (uint64_t b = 0; b < n / 32; b++, p += 18)
        for (int j = 0; j < 16; j++)
          {
            out[b * 32 + j] = f16 (p) * (float)((p[2 + j] & 15) - 8);
            out[b * 32 + j + 16] = f16 (p) * (float)((p[2 + j] >> 4) - 8);
          }
      break;
    case 3:
      for (uint64_t b = 0; b < n / 32; b++, p += 20)
        for (int j = 0; j < 16; j++)
          {
            out[b * 32 + j] = f16 (p) * (float)(p[4 + j] & 15) + f16 (p + 2);
            out[b * 32 + j + 16] = f16 (p) * (float)(p[4 + j] >> 4) + f16 (p + 2);
          }
      break;
    case 12:
      // Q4_K, element by element: sub-block j = e / 32 with its 6-bit
      // scale and min, the nibble of qs[32 (e / 64) + e % 32] (high for
      // the second 32 of each 64)
      for (uint64_t b = 0; b < n / 256; b++, p += 144)
        for (int e = 0; e < 256; e++)
          {
            const uint8_t *sc = p + 4;
            int j = e / 32, scale, min;
            if (j < 4)
              {
                scale = sc[j] & 63;
                min = sc[4 + j] & 63;
              }
            else
              {
                scale = (sc[8 + j - 4] & 15) + 16 * (sc[j - 4] >> 6);
                min = (sc[8 + j - 4] >> 4) + 16 * (sc[j] >> 6);
              }
            uint8_t byte = p[16 + 32 * (e / 64) + e % 32];
            int q = (e % 64) < 32 ? (byte & 15) : (byte >> 4);
            out[b * 256 + e] = f16 (p) * (float)scale * (float)q - f16 (p + 2) * (float)min;
          }
      break;
    case 14:
      // Q6_K, element by element: half h, quarter k, lane l; the low nibble
      // in ql[64h + 32 (k odd) + l] (high nibble for k >= 2), the top bits
      // in qh[32h + l] at 2k; scale int8 scales[e / 16], d last
      for (uint64_t b = 0; b < n / 256; b++, p += 210)
        for (int e = 0; e < 256; e++)
          {
            int h = e / 128, k = (e % 128) / 32, l = e % 32;
            uint8_t lo = p[64 * h + 32 * (k % 2) + l], hi = p[128 + 32 * h + l];
            int code = (k >= 2 ? lo >> 4 : lo & 15) | (((hi >> (2 * k)) & 3) << 4);
            out[b * 256 + e] = f16 (p + 208) * (float)(int8_t)p[192 + e / 16] * (float)(code - 32);
          }
      break;
    default:
      throw std::runtime_error ("cannot dequantize type " + std::to_string (t.type));
    }
  return out;
}

bool
gguf_read (const std::string &path, GgufFile *out, std::string *error)
{
  std::ifstream in (path, std::ios::binary);
  if (!in)
    {
      *error = "cannot open " + path;
      return false;
    }
  out->bytes.assign (std::istreambuf_iterator<char> (in), std::istreambuf_iterator<char> ());
  Cursor c{ out->bytes };
  try
    {
      c.need (4);
      if (std::memcmp (out->bytes.data (), "GGUF", 4) != 0)
        throw std::runtime_error ("bad magic");
      c.pos = 4;
      out->version = c.get<uint32_t> ();
      if (out->version != 3)
        throw std::runtime_error ("version " + std::to_string (out->version));
      uint64_t n_tensors = c.get<uint64_t> ();
      uint64_t n_kv = c.get<uint64_t> ();
      for (uint64_t k = 0; k < n_kv; k++)
        {
          std::string key = c.str ();
          if (out->kv.count (key))
            throw std::runtime_error ("duplicate key " + key);
          GgufValue v;
          v.type = c.get<uint32_t> ();
          if (v.type == 9)
            {
              v.is_array = true;
              v.elem_type = c.get<uint32_t> ();
              if (v.elem_type == 9)
                throw std::runtime_error ("nested array in " + key);
              uint64_t n = c.get<uint64_t> ();
              for (uint64_t e = 0; e < n; e++)
                read_scalar (c, v.elem_type, v);
            }
          else
            read_scalar (c, v.type, v);
          out->keys.push_back (key);
          out->kv[key] = v;
        }
      if (out->kv.count ("general.alignment"))
        out->alignment = out->get_u ("general.alignment");
      if (out->alignment == 0 || (out->alignment & (out->alignment - 1)) != 0)
        throw std::runtime_error ("alignment " + std::to_string (out->alignment));
      std::set<std::string> names;
      for (uint64_t k = 0; k < n_tensors; k++)
        {
          GgufTensor t;
          t.name = c.str ();
          if (t.name.size () > 63 || !names.insert (t.name).second)
            throw std::runtime_error ("bad or duplicate tensor name " + t.name);
          uint32_t n_dims = c.get<uint32_t> ();
          if (n_dims < 1 || n_dims > 4)
            throw std::runtime_error (t.name + ": n_dims " + std::to_string (n_dims));
          for (uint32_t d = 0; d < n_dims; d++)
            t.ne.push_back (c.get<uint64_t> ());
          t.type = c.get<uint32_t> ();
          t.offset = c.get<uint64_t> ();
          uint64_t block_bytes, block_elems;
          if (!type_block (t.type, &block_bytes, &block_elems))
            throw std::runtime_error (t.name + ": unknown type " + std::to_string (t.type));
          if (t.ne[0] % block_elems != 0)
            throw std::runtime_error (t.name + ": ne[0] not whole blocks");
          t.n_bytes = t.ne[0] / block_elems * block_bytes;
          for (uint32_t d = 1; d < n_dims; d++)
            t.n_bytes *= t.ne[d];
          if (t.offset % out->alignment != 0)
            throw std::runtime_error (t.name + ": offset not aligned");
          out->index[t.name] = out->tensors.size ();
          out->tensors.push_back (t);
        }
      out->data_start = (c.pos + out->alignment - 1) / out->alignment * out->alignment;
      for (const GgufTensor &t : out->tensors)
        if (out->data_start + t.offset + t.n_bytes > out->bytes.size ())
          throw std::runtime_error (t.name + ": data past the end of the file");
      // the padding before the data is zeros
      for (uint64_t p = c.pos; p < out->data_start && p < out->bytes.size (); p++)
        if (out->bytes[p] != 0)
          throw std::runtime_error ("non-zero padding before the data");
    }
  catch (const std::exception &e)
    {
      *error = path + ": " + e.what ();
      return false;
    }
  return true;
}

} // namespace slim_test
