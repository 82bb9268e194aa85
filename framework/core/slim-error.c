/* SPDX-License-Identifier: Apache-2.0 */
#include "slim-error.h"

G_DEFINE_QUARK (slim-config-error-quark, slim_config_error)
G_DEFINE_QUARK (slim-plugin-error-quark, slim_plugin_error)
G_DEFINE_QUARK (slim-pipeline-error-quark, slim_pipeline_error)
G_DEFINE_QUARK (slim-numeric-error-quark, slim_numeric_error)
G_DEFINE_QUARK (slim-format-error-quark, slim_format_error)
G_DEFINE_QUARK (slim-model-error-quark, slim_model_error)
