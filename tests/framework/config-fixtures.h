/* SPDX-License-Identifier: Apache-2.0
 *
 * config-fixtures.h: test-local plugin types for the config, pipeline and
 * schema suites, shaped like msModelSlim's processors but independent of
 * the real plugins (which other areas write):
 *
 *   processor linear_quant       qconfig (required) {act, weight (required)},
 *                                each {dtype, scope, symmetric, method (all
 *                                required), ext {group_size, aggregation_type,
 *                                max_bound}}; include (non-empty, default ["*"]),
 *                                exclude.  validate() rejects an act scheme
 *                                "int8 per_token asymmetric" (no such IR).
 *   processor iterative_smooth   alias iter_smooth: alpha 0..1, scale_min,
 *                                symmetric, enable_subgraph_type (strv), include
 *   processor quarot             block_size 1..4096 (int)
 *   processor kv_cache_quant     alias dynamic_cache: qconfig (a QConfig), include
 *   processor group              configs (required, non-empty plugin list)
 *   processor all_types          one property of every supported type
 *   saver ascendv1_saver         part_file_size 1..1024 (guint64, default 4)
 *   runner layer_wise            (only with slim_test_config_registry_add_runner)
 */
#pragma once

#include "slim-registry.h"

G_BEGIN_DECLS

typedef enum
{
  SLIM_TEST_QDTYPE_FLOAT,
  SLIM_TEST_QDTYPE_INT8,
  SLIM_TEST_QDTYPE_INT4,
} SlimTestQDtype;

typedef enum
{
  SLIM_TEST_QSCOPE_PER_TENSOR,
  SLIM_TEST_QSCOPE_PER_CHANNEL,
  SLIM_TEST_QSCOPE_PER_GROUP,
  SLIM_TEST_QSCOPE_PER_TOKEN,
  SLIM_TEST_QSCOPE_PD_MIX,
} SlimTestQScope;

typedef enum
{
  SLIM_TEST_STAT_MIN = 1 << 0,
  SLIM_TEST_STAT_MAX = 1 << 1,
  SLIM_TEST_STAT_HESSIAN = 1 << 2,
} SlimTestStatFlags;

GType slim_test_qconfig_get_type (void);
GType slim_test_linear_qconfig_get_type (void);

/* A registry holding exactly the static test plugins above
 * (transfer full).  @reverse registers them in the opposite order (for
 * the determinism test of the schemas). */
SlimRegistry *slim_test_config_registry_new (gboolean reverse);

/* Adds a runner plugin "layer_wise" (the only runner: model_wise and
 * dp_layer_wise stay unavailable). */
gboolean slim_test_config_registry_add_runner (SlimRegistry *registry, GError **error);

/* Adds a processor "unsettable" with a gpointer property "handle", which
 * neither the loader nor the schema generator can handle. */
gboolean slim_test_config_registry_add_unsettable (SlimRegistry *registry, GError **error);

G_END_DECLS
