/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-int-linear.c: a quantized linear as an integer product (see
 * slim-int-linear.h).
 *
 * Both forwards share the activation quantization and the scaling code
 * (forward_with); only the int32 product differs (slim_igemm_s8s8 on the
 * packed weight, or slim_igemm_s8s8_ref on the plain copy), so equal sums
 * give equal floats.  Per-group weights are one packed weight per group of
 * input columns: each group's exact sum is scaled by its own weight scale.
 */
#include "slim-int-linear.h"

#include <math.h>
#include <string.h>
#include "slim-error.h"
#include "slim-igemm.h"
#include "slim-qparams.h"

struct _SlimIntLinear
{
  gint64 n_out, n_in;
  gboolean per_token;
  gint8 *wq;                   /* (n_out, n_in) the codes, for the reference */
  gint64 n_groups, group_size; /* n_groups * group_size == n_in */
  SlimIgemmPackedB **packed;   /* (n_groups) weight columns of each group */
  /* static */
  float input_scale, input_offset;
  float *deq_scale;   /* (n_out) */
  gint32 *quant_bias; /* (n_out) */
  /* fake quant: the activation parameters come with each call */
  gboolean fake_quant;
  gint32 *rowsum; /* (n_out) sum over k of each weight row */
  /* per token (and fake quant: n_groups 1) */
  float *weight_scale;  /* (n_out, n_groups) */
  float *weight_offset; /* (n_out, n_groups), NULL: zeros */
  float *bias;          /* (n_out), NULL: none */
};

void
slim_int_linear_free (SlimIntLinear *self)
{
  if (self == NULL)
    return;
  if (self->packed != NULL)
    for (gint64 g = 0; g < self->n_groups; g++)
      slim_igemm_packed_b_free (self->packed[g]);
  g_free (self->packed);
  g_free (self->wq);
  g_free (self->deq_scale);
  g_free (self->quant_bias);
  g_free (self->rowsum);
  g_free (self->weight_scale);
  g_free (self->weight_offset);
  g_free (self->bias);
  g_free (self);
}

gint64
slim_int_linear_get_n_out (const SlimIntLinear *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->n_out;
}

gint64
slim_int_linear_get_n_in (const SlimIntLinear *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->n_in;
}

/* A record with the codes copied and packed in n_groups groups. */
static SlimIntLinear *
int_linear_new (const gint8 *wq, gint64 n_out, gint64 n_in, gint64 group_size, GError **error)
{
  g_autoptr (SlimIntLinear) self = NULL;

  if (n_out < 1 || n_in < 1 || n_in > SLIM_IGEMM_MAX_K || n_out > G_MAXINT64 / n_in
      || group_size < 0 || (group_size > 0 && n_in % group_size != 0))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "integer linear: weight (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ") with group size %" G_GINT64_FORMAT
                   " is not usable (1..%d input channels, groups dividing them)",
                   n_out, n_in, group_size, SLIM_IGEMM_MAX_K);
      return NULL;
    }
  self = g_new0 (SlimIntLinear, 1);
  self->n_out = n_out;
  self->n_in = n_in;
  self->group_size = group_size > 0 ? group_size : n_in;
  self->n_groups = n_in / self->group_size;
  self->wq = g_memdup2 (wq, (gsize)(n_out * n_in));
  self->packed = g_new0 (SlimIgemmPackedB *, self->n_groups);
  for (gint64 g = 0; g < self->n_groups; g++)
    {
      self->packed[g]
          = slim_igemm_pack_b (wq + g * self->group_size, n_out, self->group_size, n_in, error);
      if (self->packed[g] == NULL)
        return NULL;
    }
  return g_steal_pointer (&self);
}

static gboolean
check_finite (const float *v, gint64 n, gboolean positive, const char *what, GError **error)
{
  for (gint64 i = 0; i < n; i++)
    if (!isfinite (v[i]) || (positive && !(v[i] > 0.0f)))
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "integer linear: %s[%" G_GINT64_FORMAT "] = %g is not %s", what, i,
                     (double)v[i], positive ? "a positive finite scale" : "finite");
        return FALSE;
      }
  return TRUE;
}

SlimIntLinear *
slim_int_linear_new_static (const gint8 *wq,
                            gint64 n_out,
                            gint64 n_in,
                            float input_scale,
                            float input_offset,
                            const float *deq_scale,
                            const gint32 *quant_bias,
                            GError **error)
{
  g_autoptr (SlimIntLinear) self = NULL;

  g_return_val_if_fail (wq != NULL && deq_scale != NULL && quant_bias != NULL, NULL);

  if (!check_finite (&input_scale, 1, TRUE, "input_scale", error)
      || !check_finite (&input_offset, 1, FALSE, "input_offset", error)
      || !check_finite (deq_scale, MAX (n_out, 0), TRUE, "deq_scale", error))
    return NULL;
  self = int_linear_new (wq, n_out, n_in, 0, error);
  if (self == NULL)
    return NULL;
  self->input_scale = input_scale;
  self->input_offset = input_offset;
  self->deq_scale = g_memdup2 (deq_scale, (gsize)n_out * sizeof (float));
  self->quant_bias = g_memdup2 (quant_bias, (gsize)n_out * sizeof (gint32));
  return g_steal_pointer (&self);
}

SlimIntLinear *
slim_int_linear_new_per_token (const gint8 *wq,
                               gint64 n_out,
                               gint64 n_in,
                               const float *weight_scale,
                               const float *weight_offset,
                               gint64 group_size,
                               const float *bias,
                               GError **error)
{
  g_autoptr (SlimIntLinear) self = NULL;
  gint64 n_params;

  g_return_val_if_fail (wq != NULL && weight_scale != NULL, NULL);

  self = int_linear_new (wq, n_out, n_in, group_size, error);
  if (self == NULL)
    return NULL;
  n_params = n_out * self->n_groups;
  if (!check_finite (weight_scale, n_params, TRUE, "weight_scale", error)
      || (weight_offset != NULL
          && !check_finite (weight_offset, n_params, FALSE, "weight_offset", error))
      || (bias != NULL && !check_finite (bias, n_out, FALSE, "bias", error)))
    return NULL;
  self->per_token = TRUE;
  self->weight_scale = g_memdup2 (weight_scale, (gsize)n_params * sizeof (float));
  for (gint64 p = 0; weight_offset != NULL && p < n_params; p++)
    if (weight_offset[p] != 0.0f)
      {
        self->weight_offset = g_memdup2 (weight_offset, (gsize)n_params * sizeof (float));
        break;
      }
  if (bias != NULL)
    self->bias = g_memdup2 (bias, (gsize)n_out * sizeof (float));
  return g_steal_pointer (&self);
}

SlimIntLinear *
slim_int_linear_new_fake_quant (const gint8 *wq,
                                gint64 n_out,
                                gint64 n_in,
                                const float *weight_scale,
                                const float *bias,
                                GError **error)
{
  g_autoptr (SlimIntLinear) self = NULL;

  g_return_val_if_fail (wq != NULL && weight_scale != NULL, NULL);

  self = int_linear_new (wq, n_out, n_in, 0, error);
  if (self == NULL)
    return NULL;
  if (!check_finite (weight_scale, n_out, TRUE, "weight_scale", error)
      || (bias != NULL && !check_finite (bias, n_out, FALSE, "bias", error)))
    return NULL;
  self->fake_quant = TRUE;
  self->weight_scale = g_memdup2 (weight_scale, (gsize)n_out * sizeof (float));
  if (bias != NULL)
    self->bias = g_memdup2 (bias, (gsize)n_out * sizeof (float));
  self->rowsum = g_new (gint32, n_out);
  for (gint64 n = 0; n < n_out; n++)
    {
      gint32 sum = 0;
      for (gint64 k = 0; k < n_in; k++)
        sum += wq[n * n_in + k];
      self->rowsum[n] = sum;
    }
  return g_steal_pointer (&self);
}

/* acc (n_tokens, n_out) = the int32 sums of group g. */
static void
group_product (const SlimIntLinear *self,
               gint64 g,
               const gint8 *xq, /* (n_tokens, n_in) */
               gint64 n_tokens,
               gboolean ref,
               gint32 *acc /* (n_tokens, n_out) */)
{
  gint64 k0 = g * self->group_size;

  if (ref)
    slim_igemm_s8s8_ref (xq + k0, self->wq + k0, n_tokens, self->n_out, self->group_size,
                         self->n_in, self->n_in, acc, self->n_out);
  else
    slim_igemm_s8s8 (xq + k0, n_tokens, self->n_in, self->packed[g], acc, self->n_out);
}

static void
forward_static (const SlimIntLinear *self,
                const float *x, /* (n_tokens, n_in) */
                gint64 n_tokens,
                gboolean ref,
                gint8 *xq,   /* (n_tokens, n_in) scratch */
                gint32 *acc, /* (n_tokens, n_out) scratch */
                float *y /* (n_tokens, n_out) */)
{
  SlimQParamsConfig cfg;

  slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, self->input_offset == 0.0f, 0, NULL);
  slim_quantize_rows (&cfg, x, n_tokens, self->n_in, &self->input_scale, &self->input_offset, 1,
                      xq);
  group_product (self, 0, xq, n_tokens, ref, acc);
  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 n = 0; n < self->n_out; n++)
      {
        /* int64: acc + quant_bias may leave the int32 range */
        gint64 v = (gint64)acc[t * self->n_out + n] + (gint64)self->quant_bias[n];
        y[t * self->n_out + n] = self->deq_scale[n] * (float)v;
      }
}

static void
forward_per_token (const SlimIntLinear *self,
                   const float *x, /* (n_tokens, n_in) */
                   gint64 n_tokens,
                   gboolean ref,
                   gint8 *xq,   /* (n_tokens, n_in) scratch */
                   gint32 *acc, /* (n_tokens, n_out) scratch */
                   float *y /* (n_tokens, n_out) */)
{
  SlimQParamsConfig cfg;
  g_autofree float *s = g_new (float, n_tokens);      /* (n_tokens) */
  g_autofree float *offset = g_new (float, n_tokens); /* (n_tokens) zeros: symmetric */
  const gint64 n_out = self->n_out, n_groups = self->n_groups;

  slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, TRUE, 0, NULL);
  slim_quantize_rows_dynamic (&cfg, x, n_tokens, self->n_in, s, offset, xq);
  for (gint64 g = 0; g < n_groups; g++)
    {
      group_product (self, g, xq, n_tokens, ref, acc);
      for (gint64 t = 0; t < n_tokens; t++)
        {
          float xsum = 0.0f;
          float *yrow = y + t * n_out;
          const gint32 *arow = acc + t * n_out;

          if (self->weight_offset != NULL)
            {
              const gint8 *xrow = xq + t * self->n_in + g * self->group_size;
              gint32 sum = 0;

              for (gint64 k = 0; k < self->group_size; k++)
                sum += xrow[k];
              xsum = (float)sum;
            }
          for (gint64 n = 0; n < n_out; n++)
            {
              float a = (float)arow[n];
              float v;

              if (self->weight_offset != NULL)
                a -= self->weight_offset[n * n_groups + g] * xsum;
              v = s[t] * self->weight_scale[n * n_groups + g] * a;
              yrow[n] = g == 0 ? v : yrow[n] + v;
            }
        }
    }
  if (self->bias != NULL)
    for (gint64 t = 0; t < n_tokens; t++)
      for (gint64 n = 0; n < n_out; n++)
        y[t * n_out + n] += self->bias[n];
}

static void
forward_with (const SlimIntLinear *self, const float *x, gint64 n_tokens, float *y, gboolean ref)
{
  g_autofree gint8 *xq = NULL;   /* (n_tokens, n_in) */
  g_autofree gint32 *acc = NULL; /* (n_tokens, n_out) */

  g_return_if_fail (self != NULL && n_tokens >= 0);
  g_return_if_fail (n_tokens == 0 || (x != NULL && y != NULL));

  if (n_tokens == 0)
    return;
  /* a fake-quant linear has no activation parameters of its own */
  g_return_if_fail (!self->fake_quant);
  xq = g_new (gint8, n_tokens * self->n_in);
  acc = g_new (gint32, n_tokens * self->n_out);
  if (self->per_token)
    forward_per_token (self, x, n_tokens, ref, xq, acc, y);
  else
    forward_static (self, x, n_tokens, ref, xq, acc, y);
}

void
slim_int_linear_forward (const SlimIntLinear *self, const float *x, gint64 n_tokens, float *y)
{
  forward_with (self, x, n_tokens, y, FALSE);
}

static void
forward_fake_quant (const SlimIntLinear *self,
                    const float *x, /* (n_tokens, n_in) */
                    gint64 n_tokens,
                    float input_scale,
                    float input_offset,
                    float *y, /* (n_tokens, n_out) */
                    gboolean ref)
{
  g_autofree gint8 *xq = NULL;    /* (n_tokens, n_in) */
  g_autofree gint32 *acc = NULL;  /* (n_tokens, n_out) */
  g_autofree float *deq = NULL;   /* (n_out) */
  g_autofree double *corr = NULL; /* (n_out) input_offset * rowsum */
  SlimQParamsConfig cfg;
  const gint64 n_out = self->n_out;

  g_return_if_fail (self != NULL && self->fake_quant && n_tokens >= 0);
  g_return_if_fail (n_tokens == 0 || (x != NULL && y != NULL));

  if (n_tokens == 0)
    return;
  xq = g_new (gint8, n_tokens * self->n_in);
  acc = g_new (gint32, n_tokens * n_out);
  deq = g_new (float, n_out);
  corr = g_new (double, n_out);
  slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, input_offset == 0.0f, 0, NULL);
  slim_quantize_rows (&cfg, x, n_tokens, self->n_in, &input_scale, &input_offset, 1, xq);
  group_product (self, 0, xq, n_tokens, ref, acc);
  for (gint64 n = 0; n < n_out; n++)
    {
      /* the float product of (q - o) s with w ws is s ws (sum q w - o sum w) */
      deq[n] = input_scale * self->weight_scale[n];
      corr[n] = (double)input_offset * (double)self->rowsum[n];
    }
  for (gint64 t = 0; t < n_tokens; t++)
    {
      const gint32 *arow = acc + t * n_out;
      float *yrow = y + t * n_out;

      /* double: exact for an integral offset (|value| < 2^53) */
      for (gint64 n = 0; n < n_out; n++)
        yrow[n] = deq[n] * (float)((double)arow[n] - corr[n])
                  + (self->bias != NULL ? self->bias[n] : 0.0f);
    }
}

void
slim_int_linear_forward_fake_quant (const SlimIntLinear *self,
                                    const float *x,
                                    gint64 n_tokens,
                                    float input_scale,
                                    float input_offset,
                                    float *y)
{
  forward_fake_quant (self, x, n_tokens, input_scale, input_offset, y, FALSE);
}

void
slim_int_linear_forward_fake_quant_ref (const SlimIntLinear *self,
                                        const float *x,
                                        gint64 n_tokens,
                                        float input_scale,
                                        float input_offset,
                                        float *y)
{
  forward_fake_quant (self, x, n_tokens, input_scale, input_offset, y, TRUE);
}

void
slim_int_linear_forward_ref (const SlimIntLinear *self, const float *x, gint64 n_tokens, float *y)
{
  forward_with (self, x, n_tokens, y, TRUE);
}
