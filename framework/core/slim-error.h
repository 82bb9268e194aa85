/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-error.h: the error domains of slimflow.  Every failure a user, a
 * file or the data can cause is reported as a GError in one of these
 * domains (or G_FILE_ERROR / G_IO_ERROR for plain I/O).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_CONFIG_ERROR (slim_config_error_quark ())
#define SLIM_PLUGIN_ERROR (slim_plugin_error_quark ())
#define SLIM_PIPELINE_ERROR (slim_pipeline_error_quark ())
#define SLIM_NUMERIC_ERROR (slim_numeric_error_quark ())
#define SLIM_FORMAT_ERROR (slim_format_error_quark ())
#define SLIM_MODEL_ERROR (slim_model_error_quark ())

/* Configuration (YAML) errors: always carry file:line:column. */
typedef enum
{
  SLIM_CONFIG_ERROR_PARSE,       /* not YAML, not UTF-8, empty, too deep, ... */
  SLIM_CONFIG_ERROR_UNKNOWN_KEY, /* key not known; message lists valid keys */
  SLIM_CONFIG_ERROR_MISSING_KEY, /* required key absent */
  SLIM_CONFIG_ERROR_BAD_VALUE,   /* wrong type, out of range, bad choice */
  SLIM_CONFIG_ERROR_UNSUPPORTED, /* e.g. an unsupported apiversion */
} SlimConfigError;

/* Plugin discovery and loading errors: always name the module file. */
typedef enum
{
  SLIM_PLUGIN_ERROR_OPEN,
  SLIM_PLUGIN_ERROR_NO_ENTRY_POINT,
  SLIM_PLUGIN_ERROR_ABI_MISMATCH,
  SLIM_PLUGIN_ERROR_DUPLICATE_NAME,
  SLIM_PLUGIN_ERROR_UNKNOWN_NAME,
  SLIM_PLUGIN_ERROR_WRONG_KIND,
  SLIM_PLUGIN_ERROR_INIT_FAILED,
} SlimPluginError;

typedef enum
{
  SLIM_PIPELINE_ERROR_INCOMPATIBLE,
  SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
  SLIM_PIPELINE_ERROR_FAILED,
} SlimPipelineError;

typedef enum
{
  SLIM_NUMERIC_ERROR_NON_FINITE,
  SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE,
  SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
} SlimNumericError;

/* Malformed files: safetensors, npy, JSON documents, tokenizer.json. */
typedef enum
{
  SLIM_FORMAT_ERROR_TRUNCATED,
  SLIM_FORMAT_ERROR_HEADER,
  SLIM_FORMAT_ERROR_DTYPE,
  SLIM_FORMAT_ERROR_SHAPE,
  SLIM_FORMAT_ERROR_OFFSETS,
  SLIM_FORMAT_ERROR_MISSING_TENSOR,
  SLIM_FORMAT_ERROR_INVALID,
} SlimFormatError;

/* Model folders: config.json fields, architectures, tensor shapes. */
typedef enum
{
  SLIM_MODEL_ERROR_CONFIG,
  SLIM_MODEL_ERROR_UNSUPPORTED,
  SLIM_MODEL_ERROR_SHAPE,
  SLIM_MODEL_ERROR_INPUT,
} SlimModelError;

GQuark slim_config_error_quark (void);
GQuark slim_plugin_error_quark (void);
GQuark slim_pipeline_error_quark (void);
GQuark slim_numeric_error_quark (void);
GQuark slim_format_error_quark (void);
GQuark slim_model_error_quark (void);

G_END_DECLS
