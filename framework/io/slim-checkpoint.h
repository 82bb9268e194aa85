/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-checkpoint.h: SlimCheckpoint, the resume point of a layer-wise run.
 *
 * After every layer the pipeline saves one checkpoint into the work area
 * (SlimWorkdir): the index of the last layer done, the inputs of the next
 * layer (every sample), opaque processor state blobs and saver progress
 * blobs (name -> bytes, the owner serializes), and three SHA-256 hashes
 * identifying the run.  The file is written under a temporary name,
 * flushed, fsync'ed and renamed over "checkpoint.h5", so a crash at any
 * moment leaves either the previous checkpoint or the new one, never a
 * partial one; a leftover temporary file is ignored (and overwritten by
 * the next save).
 *
 * Resuming, slim_checkpoint_load() refuses a checkpoint whose hashes
 * differ from the current run's (the message says which one differs) and
 * reports a missing checkpoint as G_FILE_ERROR_NOENT and a corrupt one as
 * a SLIM_FORMAT_ERROR.  The next inputs stay in the file until
 * slim_checkpoint_read_inputs() streams them, sample by sample, into a
 * SlimActivations (which spills as its budget says); call it before the
 * next slim_checkpoint_save() replaces the file.
 *
 * What is hashed, and why (slim_checkpoint_hash_*):
 *  - config: the YAML text as read, byte for byte;
 *  - model: config.json, then for every *.safetensors file of the folder
 *    (sorted by name) its name, its size and its header (the 8-byte length
 *    and the JSON: tensor names, dtypes, shapes, offsets), then the
 *    *.safetensors.index.json if any.  Not the weights themselves: hashing
 *    gigabytes would cost a full read of the model at every start, while
 *    the header and size already change with any re-export, conversion or
 *    different model.  An in-place edit of weight bytes keeping the same
 *    layout is not detected;
 *  - dataset: the calibration token ids (per sample: the count as
 *    little-endian u64, then each id as little-endian i64), so a change of
 *    data, tokenizer, max length or sample count is caught.
 */
#pragma once

#include <glib-object.h>
#include "slim-activations.h"

G_BEGIN_DECLS

/* File names inside the work dir. */
#define SLIM_CHECKPOINT_FILE_NAME "checkpoint.h5"
#define SLIM_CHECKPOINT_TMP_FILE_NAME "checkpoint.h5.partial"

/* 64 hex digits and a NUL. */
#define SLIM_SHA256_HEX_SIZE 65

typedef struct
{
  char config[SLIM_SHA256_HEX_SIZE];
  char model[SLIM_SHA256_HEX_SIZE];
  char dataset[SLIM_SHA256_HEX_SIZE];
} SlimCheckpointHashes;

/**
 * slim_checkpoint_hash_config:
 * @text: (array length=length_bytes): the config text as read
 * @length_bytes: its length in bytes
 *
 * Returns: (transfer full): the SHA-256 of @text, 64 lower-case hex digits.
 */
char *slim_checkpoint_hash_config (const char *text, gsize length_bytes);

/**
 * slim_checkpoint_hash_model:
 * @model_path: a Hugging Face model folder
 * @error: return location for an error (unreadable file, bad header)
 *
 * Returns: (transfer full) (nullable): the SHA-256 of config.json and the
 * safetensors headers as described above.
 */
char *slim_checkpoint_hash_model (const char *model_path, GError **error);

/**
 * slim_checkpoint_hash_token_ids:
 * @n_samples: number of samples
 * @n_tokens: (array length=n_samples): ids per sample
 * @token_ids: (array length=n_samples): sample i holds n_tokens[i] ids
 *
 * Returns: (transfer full): the SHA-256 of the token ids as described above.
 */
char *
slim_checkpoint_hash_token_ids (guint n_samples,
                                const gsize *n_tokens /* (n_samples) */,
                                const gint64 *const *token_ids /* (n_samples) x (n_tokens[i]) */);

#define SLIM_TYPE_CHECKPOINT (slim_checkpoint_get_type ())
G_DECLARE_FINAL_TYPE (SlimCheckpoint, slim_checkpoint, SLIM, CHECKPOINT, GObject)

/**
 * slim_checkpoint_new:
 * @hashes: the run's hashes (copied)
 *
 * Returns: (transfer full): an empty checkpoint (layer_done -1).
 */
SlimCheckpoint *slim_checkpoint_new (const SlimCheckpointHashes *hashes);

/**
 * slim_checkpoint_get_hashes:
 * Returns: (transfer none): the hashes the checkpoint was made or saved with.
 */
const SlimCheckpointHashes *slim_checkpoint_get_hashes (SlimCheckpoint *self);

/**
 * slim_checkpoint_set_layer_done:
 * @layer_index: index of the last layer fully done, -1 for none
 */
void slim_checkpoint_set_layer_done (SlimCheckpoint *self, gint64 layer_index);
gint64 slim_checkpoint_get_layer_done (SlimCheckpoint *self);

/**
 * slim_checkpoint_set_processor_state:
 * @name: the blob's name (non-empty UTF-8, at most 256 bytes), e.g. the
 *   processor's position and type
 * @state: (nullable) (transfer none): the serialized state (a reference is
 *   taken); NULL removes the blob
 *
 * Blobs are opaque to the checkpoint; their owner serializes them.
 * slim_checkpoint_set_saver_progress() is the same for savers.
 */
void slim_checkpoint_set_processor_state (SlimCheckpoint *self, const char *name, GBytes *state);
void slim_checkpoint_set_saver_progress (SlimCheckpoint *self, const char *name, GBytes *progress);

/**
 * slim_checkpoint_get_processor_state:
 * Returns: (transfer none) (nullable): the blob named @name, NULL if none.
 */
GBytes *slim_checkpoint_get_processor_state (SlimCheckpoint *self, const char *name);
/**
 * slim_checkpoint_get_saver_progress:
 * Returns: (transfer none) (nullable): the blob named @name, NULL if none.
 */
GBytes *slim_checkpoint_get_saver_progress (SlimCheckpoint *self, const char *name);

/**
 * slim_checkpoint_dup_processor_names:
 * Returns: (transfer full): the blob names, sorted; free with g_strfreev().
 */
GStrv slim_checkpoint_dup_processor_names (SlimCheckpoint *self);
/**
 * slim_checkpoint_dup_saver_names:
 * Returns: (transfer full): the blob names, sorted; free with g_strfreev().
 */
GStrv slim_checkpoint_dup_saver_names (SlimCheckpoint *self);

/**
 * slim_checkpoint_save:
 * @work_dir: an existing directory (the run's work area)
 * @next_inputs: (nullable) (transfer none): the next layer's inputs, read
 *   one sample at a time; NULL saves none
 * @error: return location for an error
 *
 * Writes work_dir/checkpoint.h5 atomically (see above).  On failure the
 * previous checkpoint, if any, is left untouched and the temporary file
 * removed.
 *
 * Returns: TRUE on success.
 */
gboolean slim_checkpoint_save (SlimCheckpoint *self,
                               const char *work_dir,
                               SlimActivations *next_inputs,
                               GError **error);

/**
 * slim_checkpoint_load:
 * @work_dir: the run's work area
 * @expected: (nullable): the current run's hashes; NULL skips the check
 * @error: return location for an error: G_FILE_ERROR_NOENT (no checkpoint),
 *   SLIM_FORMAT_ERROR (corrupt), SLIM_PIPELINE_ERROR_INCOMPATIBLE (hashes)
 *
 * Returns: (transfer full) (nullable): the checkpoint's metadata and blobs.
 */
SlimCheckpoint *
slim_checkpoint_load (const char *work_dir, const SlimCheckpointHashes *expected, GError **error);

/**
 * slim_checkpoint_get_n_inputs:
 * Returns: the number of input samples in the loaded checkpoint (0 if none).
 */
guint slim_checkpoint_get_n_inputs (SlimCheckpoint *self);

/**
 * slim_checkpoint_read_inputs:
 * @into: (transfer none): activations with exactly get_n_inputs() samples
 * @error: return location for an error
 *
 * Streams the stored inputs of a loaded checkpoint, sample by sample, into
 * @into.
 *
 * Returns: TRUE on success.
 */
gboolean slim_checkpoint_read_inputs (SlimCheckpoint *self, SlimActivations *into, GError **error);

G_END_DECLS
