/* SPDX-License-Identifier: Apache-2.0
 *
 * gguf-saver.c: the gguf_saver plugin (YAML `type: gguf_saver`, alias
 * `gguf`): one GGUF v3 file for llama.cpp, out_dir/<file_name>, with the
 * llama (or qwen2) architecture's metadata, the model's tokenizer embedded and every
 * tensor (slim-gguf-llama.h: names, q/k row order, which quantization maps
 * to Q8_0 / Q4_0 / Q4_1; slim-gguf-vocab.h: the tokenizer keys).
 *
 * Properties (YAML keys): file_name (default "model.gguf"), float_type
 * (f32, the default, or f16: the type of 2-D float tensors, the embedding
 * and unquantized linears; norms stay f32), linear_type (float, the
 * default, or q4_k / q6_k: the decoder linears left float are requantized
 * to ggml's K-quants by the saver, slim-gguf-kquants.h).
 *
 * Not an msModelSlim saver (msModelSlim writes no GGUF).  The file is
 * streamed: tensor data goes to a partial file as layers arrive and the
 * header is written at finish, so memory does not grow with the model.
 * Resumable: the progress is the tensors written so far (the data file is
 * cut back to them on resume); the metadata is set again from the model.
 */
#include "slim-plugin.h"

#include <string.h>

typedef enum
{
  SLIM_GGUF_FLOAT_F32,
  SLIM_GGUF_FLOAT_F16,
} SlimGgufFloatType;

typedef enum
{
  SLIM_GGUF_LINEAR_FLOAT,
  SLIM_GGUF_LINEAR_Q4_K,
  SLIM_GGUF_LINEAR_Q6_K,
} SlimGgufLinearType;

static GType slim_gguf_linear_type_get_type (void);
G_DEFINE_ENUM_TYPE (SlimGgufLinearType,
                    slim_gguf_linear_type,
                    G_DEFINE_ENUM_VALUE (SLIM_GGUF_LINEAR_FLOAT, "float"),
                    G_DEFINE_ENUM_VALUE (SLIM_GGUF_LINEAR_Q4_K, "q4_k"),
                    G_DEFINE_ENUM_VALUE (SLIM_GGUF_LINEAR_Q6_K, "q6_k"))

static GType slim_gguf_float_type_get_type (void);
G_DEFINE_ENUM_TYPE (SlimGgufFloatType,
                    slim_gguf_float_type,
                    G_DEFINE_ENUM_VALUE (SLIM_GGUF_FLOAT_F32, "f32"),
                    G_DEFINE_ENUM_VALUE (SLIM_GGUF_FLOAT_F16, "f16"))

#define SLIM_TYPE_GGUF_SAVER (slim_gguf_saver_get_type ())
G_DECLARE_FINAL_TYPE (SlimGgufSaver, slim_gguf_saver, SLIM, GGUF_SAVER, SlimSaver)

struct _SlimGgufSaver
{
  SlimSaver parent_instance;

  char *file_name;
  gint float_type;        /* SlimGgufFloatType */
  gint linear_type;       /* SlimGgufLinearType */
  SlimGgufWriter *writer; /* between begin and finish */
  SlimGgufLlama *llama;
};

/* clang-format off */
static const SlimPropertyDecl slim_gguf_saver_properties[] = {
  SLIM_PROPERTY_STRING (
      SlimGgufSaver, file_name, "file-name", "File name",
      "Name of the GGUF file written in the output folder (no directory part).", "model.gguf"),
  SLIM_PROPERTY_ENUM (
      SlimGgufSaver, float_type, "float-type", "Float type",
      "ggml type of the 2-D float tensors (the embedding, linears left unquantized): f32 or f16. "
      "Norm weights are always f32.",
      slim_gguf_float_type_get_type, SLIM_GGUF_FLOAT_F32),
  SLIM_PROPERTY_ENUM (
      SlimGgufSaver, linear_type, "linear-type", "Linear type",
      "ggml type of the decoder linears the pipeline left float: float (float_type), or q4_k / "
      "q6_k, requantized by the saver from the float weights in ggml's K-quant super-blocks of "
      "256 (input features must be multiples of 256). Quantized linears keep their own type.",
      slim_gguf_linear_type_get_type, SLIM_GGUF_LINEAR_FLOAT),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimGgufSaver, slim_gguf_saver, SLIM_TYPE_SAVER)

static void
slim_gguf_saver_drop (SlimGgufSaver *self)
{
  g_clear_pointer (&self->llama, slim_gguf_llama_free);
  /* an unfinished writer removes its partial files */
  g_clear_pointer (&self->writer, slim_gguf_writer_free);
}

/* begin (progress NULL) or resume. */
static gboolean
slim_gguf_saver_open (
    SlimGgufSaver *self, SlimModel *model, const char *out_dir, GBytes *progress, GError **error)
{
  const char *model_dir = slim_model_get_path (model);
  g_autofree char *path = NULL;
  g_autofree char *name = NULL;
  g_autoptr (SlimTokenizer) tokenizer = NULL;

  if (self->file_name == NULL || self->file_name[0] == '\0' || strchr (self->file_name, '/') != NULL
      || strcmp (self->file_name, ".") == 0 || strcmp (self->file_name, "..") == 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "gguf_saver: file_name \"%s\" must be a plain file name",
                   self->file_name != NULL ? self->file_name : "");
      return FALSE;
    }
  tokenizer = slim_tokenizer_new_from_dir (model_dir, error);
  if (tokenizer == NULL)
    {
      g_prefix_error (error, "gguf_saver embeds the model's tokenizer: ");
      return FALSE;
    }
  slim_gguf_saver_drop (self);
  path = g_build_filename (out_dir, self->file_name, NULL);
  self->writer = progress != NULL ? slim_gguf_writer_new_resumed (path, progress, error)
                                  : slim_gguf_writer_new (path, error);
  if (self->writer == NULL)
    return FALSE;
  name = g_path_get_basename (model_dir);
  self->llama = slim_gguf_llama_new (
      self->writer, slim_model_get_config (model), tokenizer, name,
      self->float_type == SLIM_GGUF_FLOAT_F16 ? SLIM_GGML_TYPE_F16 : SLIM_GGML_TYPE_F32, error);
  if (self->llama == NULL)
    {
      slim_gguf_saver_drop (self);
      return FALSE;
    }
  if (self->linear_type != SLIM_GGUF_LINEAR_FLOAT)
    slim_gguf_llama_set_linear_type (self->llama, self->linear_type == SLIM_GGUF_LINEAR_Q4_K
                                                      ? SLIM_GGML_TYPE_Q4_K
                                                      : SLIM_GGML_TYPE_Q6_K);
  return TRUE;
}

static gboolean
slim_gguf_saver_begin (SlimSaver *saver, SlimModel *model, const char *out_dir, GError **error)
{
  return slim_gguf_saver_open (SLIM_GGUF_SAVER (saver), model, out_dir, NULL, error);
}

static GBytes *
slim_gguf_saver_save_progress (SlimSaver *saver, GError **error)
{
  return slim_gguf_writer_save_state (SLIM_GGUF_SAVER (saver)->writer, error);
}

static gboolean
slim_gguf_saver_resume (
    SlimSaver *saver, SlimModel *model, const char *out_dir, GBytes *progress, GError **error)
{
  if (!slim_gguf_saver_open (SLIM_GGUF_SAVER (saver), model, out_dir, progress, error))
    {
      g_prefix_error (error, "cannot resume the GGUF file in %s: ", out_dir);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_gguf_saver_write_layer (SlimSaver *saver, SlimLayer *layer, GError **error)
{
  SlimGgufSaver *self = SLIM_GGUF_SAVER (saver);

  return slim_gguf_llama_write_layer (self->llama, layer, error);
}

static gboolean
slim_gguf_saver_finish (SlimSaver *saver, GError **error)
{
  SlimGgufSaver *self = SLIM_GGUF_SAVER (saver);
  gboolean ok;

  slim_gguf_llama_finish (self->llama);
  ok = slim_gguf_writer_finish (self->writer, error);
  slim_gguf_saver_drop (self);
  return ok;
}

static void
slim_gguf_saver_abort (SlimSaver *saver)
{
  slim_gguf_saver_drop (SLIM_GGUF_SAVER (saver));
}

static void
slim_gguf_saver_dispose (GObject *object)
{
  slim_gguf_saver_drop (SLIM_GGUF_SAVER (object));
  G_OBJECT_CLASS (slim_gguf_saver_parent_class)->dispose (object);
}

static void
slim_gguf_saver_class_init (SlimGgufSaverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimSaverClass *saver_class = SLIM_SAVER_CLASS (klass);

  object_class->dispose = slim_gguf_saver_dispose;
  saver_class->begin = slim_gguf_saver_begin;
  saver_class->write_layer = slim_gguf_saver_write_layer;
  saver_class->finish = slim_gguf_saver_finish;
  saver_class->abort = slim_gguf_saver_abort;
  saver_class->save_progress = slim_gguf_saver_save_progress;
  saver_class->resume = slim_gguf_saver_resume;

  SLIM_PROPERTIES_INSTALL (klass, slim_gguf_saver_properties);
}

static void
slim_gguf_saver_init (SlimGgufSaver *self)
{
}

SLIM_PLUGIN_DEFINE (
    saver,
    gguf_saver,
    SLIM_PLUGIN_ALIASES ("gguf"),
    "GGUF v3 for llama.cpp (llama / qwen2 architectures, tokenizer embedded, Q8_0 / Q4_0 / "
    "Q4_1 from int8/int4 per-group-32 weights, Q4_K / Q6_K requantized from float linears)",
    slim_gguf_saver_get_type)
