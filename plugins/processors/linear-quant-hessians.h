/* SPDX-License-Identifier: Apache-2.0
 *
 * linear-quant-hessians.h: the GPTQ Hessians of the linears linear_quant
 * (and pdmix) quantize with `method: gptq`, shared between linears that
 * read the same input (slimflow's extension to msModelSlim, which keeps one
 * Hessian per linear).
 *
 * A SlimHessianPool holds one entry per linear (its module name) and the
 * shared accumulators ("shares") they point to.  Sharing candidates are the
 * linears with the same parent module name (the module name up to its last
 * '.', e.g. "model.layers.0.self_attn" for q/k/v, "...mlp" for gate/up,
 * the router "mlp.gate" and qwen2_moe's "mlp.shared_expert_gate",
 * "...mlp.experts.3" for one expert's gate/up) and the same input width.
 * On a linear's first call its input is compared (a 64-bit hash of the
 * bytes plus the row count) with the first call of each candidate share:
 * equal joins the share, otherwise the linear opens a new share.  Each
 * later call is checked against the share's call of the same index (the
 * first member to reach a call index accumulates it, the others only
 * verify): a mismatch is an error, never a silently wrong Hessian.
 * Without sharing (share = FALSE) every linear has its own share.
 *
 * The factorisation (slim_gptq_factor_init) is also done once per share
 * and reused by its members, which all come from one processor and so
 * have equal percdamp and act_order; the accumulator is freed once
 * factorised (a call after that is an error).
 *
 * Every share belongs to an owner (the processor passes the layer) and is
 * freed with slim_hessian_pool_release (the processor does so in
 * finish_layer, also on error): a layer's Hessians live only while the
 * layer is resident.
 */
#pragma once

#include "slim-plugin.h"

G_BEGIN_DECLS

typedef struct _SlimHessianPool SlimHessianPool;

/* What one owner's shares did (for the debug line and tests). */
typedef struct
{
  guint n_linears;        /* linears that got at least one call */
  guint n_shares;         /* distinct Hessians */
  guint64 n_add_batch;    /* slim_gptq_hessian_add_batch calls */
  guint n_factorisations; /* slim_gptq_factor_init calls */
} SlimHessianPoolStats;

SlimHessianPool *slim_hessian_pool_new (gboolean share);
void slim_hessian_pool_free (SlimHessianPool *self);

/* One calibration call of @module (owner @owner): x is the linear's
 * input as the linear reads it (after its activation fake-quant).
 * n_rows == 0 adds nothing (msModelSlim skips empty inputs). */
gboolean slim_hessian_pool_add (SlimHessianPool *self,
                                gconstpointer owner,
                                const char *module,
                                const float *x, /* (n_rows, n_in) row-major */
                                gint64 n_rows,
                                gint64 n_in,
                                GError **error);

/* The factor of @module's Hessian, made on the first request of its share.
 * Errors (prefixed with the share's modules): no calibration row reached
 * @module, not positive definite, ... (slim_gptq_factor_init). */
const SlimGptqFactor *slim_hessian_pool_get_factor (
    SlimHessianPool *self, const char *module, double percdamp, gboolean act_order, GError **error);

/* Frees every share and entry of @owner; @out_stats (nullable) gets what
 * they did. */
void slim_hessian_pool_release (SlimHessianPool *self,
                                gconstpointer owner,
                                SlimHessianPoolStats *out_stats);

/* The share @module accumulates into (an opaque key: linears with the same
 * key use one factorisation), NULL before its first call. */
gconstpointer slim_hessian_pool_get_share (SlimHessianPool *self, const char *module);

/* dp_layer_wise (linear-quant.c): the accumulation state of @owner's
 * shares, in creation order, to hand to the next rank: for each share its
 * parent name, n_in, rows so far, the float32 Hessian's bytes (native
 * byte order: the ranks of a job run on one kind of machine), the hashes
 * of its calls and its members with their call counts.  Fails once a
 * share is factorised. */
#define SLIM_HESSIAN_POOL_STATE_TYPE "a(sxxayata(st))"
GVariant *slim_hessian_pool_export (SlimHessianPool *self, gconstpointer owner, GError **error);
/* Replaces @owner's shares and entries by @state (from _export on another
 * rank); a malformed state is SLIM_PIPELINE_ERROR_INCOMPATIBLE. */
gboolean slim_hessian_pool_import (SlimHessianPool *self,
                                   gconstpointer owner,
                                   GVariant *state,
                                   GError **error);

G_END_DECLS
