/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-online-rotation.h: QuaRot's online rotations, the ones applied to a
 * linear's input in the forward because no weight before the linear can
 * absorb them (spec 2.15; msModelSlim ir/quarot.py QuarotHeadsRotationHookIR,
 * QuarotKroneckerRotationHookIR; processor/quarot/common/quarot_utils.py
 * get_decompose_dim, online_rotate_o_proj_input, online_rotate_down_proj):
 *
 *   heads       x (n_heads * head_dim) viewed as X (n_heads, head_dim):
 *               X <- R^T X, R (n_heads, n_heads); the linear's weight
 *               was W <- W (R kron I_head_dim), so W x is unchanged
 *   kronecker   x (m * n) viewed as X (m, n): X <- M^T X N, M (m, m),
 *               N (n, n); the weight was W <- W (M kron N)
 *   hadamard    x (n) <- H^T x / sqrt(n), H = had_k (x) S_m the Hadamard
 *               matrix of slim-hadamard.h (n = k 2^m, no random signs),
 *               O(n log n + n k) by the fast transform; the weight was
 *               W <- W H / sqrt(n).  The original QuaRot paper's online
 *               down_proj rotation, for the sizes the Kronecker split
 *               (msModelSlim's get_decompose_dim) has none for, e.g.
 *               stories260K's 172 (quarot down_proj_online_kind: hadamard)
 *
 * (row-major vec: vec(A X B) = (A kron B^T) vec(X), so the input becomes
 * (M kron N)^T x and the product is W x for orthogonal M, N.)  The
 * weight side is the same operation on the weight's rows (a row w_i
 * viewed as (m, n) becomes M^T W_i N, which is w_i (M kron N)), so the
 * processor fuses with these functions too (n_tokens = rows).  The
 * matrices are dense float32 as saved (<o_proj>.heads_rotation,
 * <down_proj>.kronecker_rotation_m / _n; for hadamard only the base had_k
 * (k, k) of +-1 entries, <down_proj>.hadamard_rotation, from which the
 * transform is rebuilt); the fast paths are sgemm products or the fast
 * Hadamard transform, the _ref twins plain loops or the dense product.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Suffixes of the saved matrices, appended to the linear's name. */
#define SLIM_ONLINE_ROTATION_HEADS ".heads_rotation"
#define SLIM_ONLINE_ROTATION_KRON_M ".kronecker_rotation_m"
#define SLIM_ONLINE_ROTATION_KRON_N ".kronecker_rotation_n"
#define SLIM_ONLINE_ROTATION_HADAMARD ".hadamard_rotation"
/* The offline rotation Q of the residual stream (hidden, hidden), carried
 * by the embeddings unit as <embed_tokens>.global_rotation for the saver's
 * optional/quarot.safetensors (export_extra_info); no forward reads it. */
#define SLIM_QUAROT_GLOBAL_ROTATION ".global_rotation"

/* TRUE when name is one of the saved QuaRot matrices above. */
gboolean slim_online_rotation_is_online_name (const char *name);

/**
 * slim_online_rotation_decompose:
 * @n: the size (down_proj's input, the intermediate size)
 * @out_m: (out): the smaller factor
 * @out_n: (out): the larger factor
 * @error: @n has no decomposition (the message names it)
 *
 * msModelSlim's get_decompose_dim: n = m n' with m = a - b, n' = a + b for
 * the smallest a >= ceil(sqrt(n)) where a^2 - n is a square b^2 and both
 * factors are in {1, 2, 4, 8, .., 256} (1, 2 or a multiple of 4 up to 256).
 *
 * Returns: TRUE on success.
 */
gboolean slim_online_rotation_decompose (gint64 n, gint64 *out_m, gint64 *out_n, GError **error);

/* x (n_tokens, n_heads * head_dim): every token's (n_heads, head_dim)
 * block X <- R^T X; r (n_heads, n_heads). */
void slim_online_rotation_heads (
    const float *r, gint64 n_heads, gint64 head_dim, float *x, gint64 n_tokens);
void slim_online_rotation_heads_ref (
    const float *r, gint64 n_heads, gint64 head_dim, float *x, gint64 n_tokens);

/* x (n_tokens, dm * dn): every token's (dm, dn) block X <- M^T X N;
 * m (dm, dm), n (dn, dn). */
void slim_online_rotation_kronecker (
    const float *m, gint64 dm, const float *n, gint64 dn, float *x, gint64 n_tokens);
void slim_online_rotation_kronecker_ref (
    const float *m, gint64 dm, const float *n, gint64 dn, float *x, gint64 n_tokens);

/**
 * slim_online_rotation_hadamard:
 * @had_k: (k, k) the base as saved (<down_proj>.hadamard_rotation), entries
 *   +1 / -1; (1, 1) = {1} when n_in is a power of two
 * @k: its order
 * @x: (n_tokens, n_in) every row x <- H^T x / sqrt(n_in), in place
 * @error: SLIM_MODEL_ERROR_SHAPE when n_in is not k * 2^m or had_k has an
 *   entry other than +-1 (the message names the module's tensor via the
 *   caller's prefix)
 *
 * Returns: TRUE on success.
 */
gboolean slim_online_rotation_hadamard (
    const float *had_k, gint64 k, float *x, gint64 n_tokens, gint64 n_in, GError **error);
/* The same through the dense matrix (slim_hadamard_transform_rows_ref). */
gboolean slim_online_rotation_hadamard_ref (
    const float *had_k, gint64 k, float *x, gint64 n_tokens, gint64 n_in, GError **error);

/* had_k (k, k) = slimflow's Hadamard base of n (slim_hadamard_decompose,
 * slim_hadamard_base) as float +-1, k in *out_k; NULL with the
 * construction's error naming n. */
float *slim_online_rotation_hadamard_base (gint64 n, gint64 *out_k, GError **error);

G_END_DECLS
