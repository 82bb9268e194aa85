/* SPDX-License-Identifier: Apache-2.0
 *
 * linear-quant.h: SlimLinearQuantBase, the abstract processor behind
 * `linear_quant` and its shorthand `pdmix` (both built into
 * slim-processor-linear_quant.so; slim-processor-pdmix.so is a link to
 * that module, so both names load one copy of the code and the types).
 *
 * The base does all the work (linear-quant.c); a subclass only says which
 * SlimLinearQConfig it quantizes with: linear_quant from its `qconfig`
 * property, pdmix a fixed W8A8_MIX config (pdmix.c).  The subclass
 * overrides SlimLinearProcessorClass.prepare, calls
 * slim_linear_quant_base_set_qconfig() and chains up.
 */
#pragma once

#include "slim-plugin.h"

G_BEGIN_DECLS

#define SLIM_TYPE_LINEAR_QUANT_BASE (slim_linear_quant_base_get_type ())
G_DECLARE_DERIVABLE_TYPE (
    SlimLinearQuantBase, slim_linear_quant_base, SLIM, LINEAR_QUANT_BASE, SlimLinearProcessor)

struct _SlimLinearQuantBaseClass
{
  SlimLinearProcessorClass parent_class;
};

/* The configuration to resolve (a new reference is kept); before the
 * base's prepare.  NULL is a missing `qconfig`. */
void slim_linear_quant_base_set_qconfig (SlimLinearQuantBase *self, SlimLinearQConfig *qconfig);
/* The math of the records it deploys (SlimQLinear.math; default FLOAT). */
void slim_linear_quant_base_set_linear_math (SlimLinearQuantBase *self, SlimLinearMath math);
/* The math of its calibration forward's products (default FLOAT; INT8
 * only for W8A8 static, checked by prepare). */
void slim_linear_quant_base_set_calib_math (SlimLinearQuantBase *self, SlimLinearMath math);

/* linear_quant's type (linear-quant.c), pdmix's (pdmix.c). */
GType slim_linear_quant_processor_get_type (void);
GType slim_pdmix_processor_get_type (void);

G_END_DECLS
