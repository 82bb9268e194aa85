/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ascend-saver.h: SlimAscendSaver, the abstract base of the savers
 * that write msModelSlim's Ascend output folders through SlimAscendWriter
 * (slim-ascend-writer.h): ascendv1_saver and mindie_format_saver.
 *
 * The base owns the writer and the `part_file_size` property (YAML key;
 * the shard size in GB of 2^30 bytes, an integer as in msModelSlim,
 * default 4, 0 writes one unsharded file) and implements every SlimSaver
 * vfunc, resume included.  A subclass only sets, in its class_init, the
 * format of its folder and whether a bfloat16 model gets float32
 * deq_scale (ascendv1) or every model does (mindie).
 */
#pragma once

#include "slim-ascend-writer.h"
#include "slim-saver.h"

G_BEGIN_DECLS

#define SLIM_TYPE_ASCEND_SAVER (slim_ascend_saver_get_type ())
G_DECLARE_DERIVABLE_TYPE (SlimAscendSaver, slim_ascend_saver, SLIM, ASCEND_SAVER, SlimSaver)

typedef enum
{
  SLIM_ASCEND_DEQ_SCALE_I64_UNLESS_BF16, /* float32 only for a bfloat16 model */
  SLIM_ASCEND_DEQ_SCALE_F32,             /* always float32 */
} SlimAscendDeqScale;

/**
 * SlimAscendSaverClass:
 * @format: the folder written (set in the subclass's class_init)
 * @deq_scale: the dtype of W8A8 deq_scale
 */
struct _SlimAscendSaverClass
{
  SlimSaverClass parent_class;

  SlimAscendFormat format;
  SlimAscendDeqScale deq_scale;
};

G_END_DECLS
