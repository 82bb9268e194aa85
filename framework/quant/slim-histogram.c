/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-histogram.c: the histogram observer (behaviour in
 * slim-histogram.h).
 *
 * The float32 functions repeat torch's elementwise operations in its order
 * and types (python scalars become float32 operands, integer tensors
 * become float32, reductions accumulate in float64 here where torch uses
 * a float32 cascade: the sums differ by an ulp at most); fp-contract=off
 * keeps GCC from fusing products into sums.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "slim-histogram.h"

#include "slim-dtype.h"
#include "slim-error.h"

#include <float.h>
#include <math.h>
#include <string.h>

G_DEFINE_ENUM_TYPE (SlimHistogramMetric,
                    slim_histogram_metric,
                    G_DEFINE_ENUM_VALUE (SLIM_HISTOGRAM_L2_NORM, "l2_norm"),
                    G_DEFINE_ENUM_VALUE (SLIM_HISTOGRAM_KL_DIVERGENCE, "kl_divergence"))

#define BINS SLIM_HISTOGRAM_BINS
#define DST_NBINS SLIM_HISTOGRAM_DST_NBINS

/* torch's floor division of floats (c10::div_floor_floating): the
 * quotient of a - fmod(a, b), floored, corrected towards the nearest
 * integer. */
static float
slim_div_floor_f32 (float a, float b)
{
  float mod, div, floordiv;

  if (b == 0.0f)
    return a / b;
  mod = fmodf (a, b);
  div = (a - mod) / b;
  if (mod != 0.0f && (b < 0.0f) != (mod < 0.0f))
    div -= 1.0f;
  if (div != 0.0f)
    {
      floordiv = floorf (div);
      if (div - floordiv > 0.5f)
        floordiv += 1.0f;
    }
  else
    floordiv = copysignf (0.0f, a / b);
  return floordiv;
}

static float
slim_clamp_f32 (float v, float lo, float hi)
{
  v = (v < lo) ? lo : v;
  return (v > hi) ? hi : v;
}

/* Element i of torch.linspace (start, end, steps), float32, scalar form. */
static float
slim_linspace_f32 (float start, float end, gint64 steps, gint64 i)
{
  const float step = (end - start) / (float)(steps - 1);

  if (i < steps / 2)
    return start + step * (float)i;
  return end - step * (float)(steps - i - 1);
}

/**
 * slim_histogram_histc:
 * (see slim-histogram.h)
 */
void
slim_histogram_histc (const float *x, gint64 n, float lo, float hi, float *hist)
{
  const float range = hi - lo;

  g_return_if_fail (hist != NULL && n >= 0 && (n == 0 || x != NULL));

  memset (hist, 0, BINS * sizeof (float));
  for (gint64 i = 0; i < n; i++)
    {
      const float e = x[i];
      gint64 pos;

      if (!(e >= lo && e <= hi))
        continue;
      pos = (gint64)((e - lo) * (float)BINS / range);
      if (pos == BINS)
        pos = BINS - 1;
      hist[pos] += 1.0f;
    }
}

/**
 * slim_histogram_upscale:
 * (see slim-histogram.h)
 */
void
slim_histogram_upscale (
    const float *hist, float orig_min, float orig_max, float new_min, float new_max, float *out)
{
  const gint64 rate = SLIM_HISTOGRAM_UPSAMPLE_RATE;
  const gint64 n_fine = BINS * rate;
  const float bin_size = (orig_max - orig_min) / (float)n_fine;
  const float half_bin = 0.5f * bin_size;
  float bounds[BINS + 1];

  g_return_if_fail (hist != NULL && out != NULL && out != hist);

  for (gint64 b = 0; b <= BINS; b++)
    bounds[b] = slim_linspace_f32 (new_min, new_max, BINS + 1, b);
  memset (out, 0, BINS * sizeof (float));
  for (gint64 i = 0; i < n_fine; i++)
    {
      const float weight = hist[i / rate] / (float)rate;
      const float mid = slim_linspace_f32 (orig_min, orig_max, n_fine + 1, i) + half_bin;
      gint64 lo = 0, hi = BINS + 1, bucket;

      /* torch.bucketize (right=True) - 1: the last boundary <= mid */
      while (lo < hi)
        {
          gint64 m = lo + (hi - lo) / 2;

          if (bounds[m] <= mid)
            lo = m + 1;
          else
            hi = m;
        }
      bucket = lo - 1;
      bucket = CLAMP (bucket, 0, BINS - 1);
      out[bucket] += weight;
    }
}

/* The width of one source bin as torch's error functions compute it:
 * max / bins - min / bins in float64 (python floats of .item()). */
static double
slim_histogram_bin_width (float min_val, float max_val)
{
  return (double)max_val / BINS - (double)min_val / BINS;
}

/* _compute_l2_error in float32. */
static double
slim_histogram_l2_error (
    const float *hist, float min_val, float max_val, gint64 start_bin, gint64 end_bin)
{
  const double bin_width_d = slim_histogram_bin_width (min_val, max_val);
  const double dst_bin_width_d = bin_width_d * (double)(end_bin - start_bin + 1) / DST_NBINS;
  float bin_width, dst_bin_width, half, neg_half, full_norm;
  double sum = 0.0;

  if (dst_bin_width_d == 0.0)
    return 0.0;
  bin_width = (float)bin_width_d;
  dst_bin_width = (float)dst_bin_width_d;
  half = (float)(dst_bin_width_d / 2);
  neg_half = (float)(-dst_bin_width_d / 2);
  /* _get_norm over one whole destination bin, before the density */
  full_norm = (half * half * half - neg_half * neg_half * neg_half) / 3.0f;

  for (gint64 i = 0; i < BINS; i++)
    {
      const float src_begin = (float)(i - start_bin) * bin_width;
      const float src_end = src_begin + bin_width;
      const float dst_of_begin
          = slim_clamp_f32 (slim_div_floor_f32 (src_begin, dst_bin_width), 0.0f, DST_NBINS - 1);
      const float dst_of_begin_center = (dst_of_begin + 0.5f) * dst_bin_width;
      const float dst_of_end
          = slim_clamp_f32 (slim_div_floor_f32 (src_end, dst_bin_width), 0.0f, DST_NBINS - 1);
      const float density = hist[i] / bin_width;
      const float delta_begin = src_begin - dst_of_begin_center;
      const float dst_of_end_center = dst_of_end * dst_bin_width + half;
      const float delta_end = src_end - dst_of_end_center;
      float norm = 0.0f;

      norm += density * ((half * half * half - delta_begin * delta_begin * delta_begin) / 3.0f);
      norm += (dst_of_end - dst_of_begin - 1.0f) * (density * full_norm);
      norm += density
              * ((delta_end * delta_end * delta_end - neg_half * neg_half * neg_half) / 3.0f);
      sum += (double)norm;
    }
  return (double)(float)sum;
}

/* The L2 error in float64 (same formulas, no float32 rounding). */
static double
slim_histogram_l2_error_ref (
    const float *hist, float min_val, float max_val, gint64 start_bin, gint64 end_bin)
{
  const double bin_width = slim_histogram_bin_width (min_val, max_val);
  const double dst_bin_width = bin_width * (double)(end_bin - start_bin + 1) / DST_NBINS;
  const double half = dst_bin_width / 2;
  double sum = 0.0;

  if (dst_bin_width == 0.0)
    return 0.0;
  for (gint64 i = 0; i < BINS; i++)
    {
      const double src_begin = (double)(i - start_bin) * bin_width;
      const double src_end = src_begin + bin_width;
      const double dst_of_begin = CLAMP (floor (src_begin / dst_bin_width), 0.0, DST_NBINS - 1);
      const double dst_of_end = CLAMP (floor (src_end / dst_bin_width), 0.0, DST_NBINS - 1);
      const double density = hist[i] / bin_width;
      const double delta_begin = src_begin - (dst_of_begin + 0.5) * dst_bin_width;
      const double delta_end = src_end - (dst_of_end * dst_bin_width + half);

      sum += density * (half * half * half - delta_begin * delta_begin * delta_begin) / 3.0;
      sum += (dst_of_end - dst_of_begin - 1.0) * density * (2.0 * half * half * half) / 3.0;
      sum += density * (delta_end * delta_end * delta_end + half * half * half) / 3.0;
    }
  return sum;
}

/* _compute_kl_error; float32 as torch unless use_double (the reference:
 * everything but the fake quantization in float64). */
static double
slim_histogram_kl_error (const float *hist,
                         float min_val,
                         float max_val,
                         gint64 start_bin,
                         gint64 end_bin,
                         const SlimQParamsConfig *qparams,
                         gboolean use_double)
{
  const float eps = FLT_EPSILON;
  const double bin_width_d = slim_histogram_bin_width (min_val, max_val);
  const float bin_width = (float)bin_width_d;
  const float quant_min = min_val + (float)((double)start_bin * bin_width_d);
  const float quant_max = min_val + (float)((double)(end_bin + 1) * bin_width_d);
  float *mid = g_new (float, BINS);
  gint64 *target = g_new (gint64, BINS);
  double *mass = g_new0 (double, BINS);
  gint64 *count = g_new0 (gint64, BINS);
  double total_d = 0.0, kl = 0.0;
  float total, scale, offset;

  for (gint64 i = 0; i < BINS; i++)
    total_d += (double)hist[i];
  total = (float)total_d;
  slim_qparams_compute (qparams, quant_min, quant_max, &scale, &offset);
  for (gint64 i = 0; i < BINS; i++)
    mid[i] = ((float)i + 0.5f) * bin_width + min_val;
  slim_fake_quantize_rows (qparams, mid, 1, BINS, &scale, &offset, 1, mid);
  for (gint64 i = 0; i < BINS; i++)
    {
      float fq = mid[i];
      float p = hist[i] / total;

      if (i < start_bin)
        fq = quant_min;
      if (i >= end_bin)
        fq = quant_max;
      if (use_double)
        fq = (float)(floor (((double)fq - quant_min) / bin_width_d) + (double)start_bin);
      else
        fq = slim_div_floor_f32 (fq - quant_min, bin_width) + (float)start_bin;
      fq = slim_clamp_f32 (fq, (float)start_bin, (float)end_bin);
      target[i] = (gint64)fq;
      /* torch.bincount of the float16 probabilities (in float64) */
      mass[target[i]]
          += use_double ? (double)hist[i] / total_d : (double)slim_f16_to_f32 (slim_f32_to_f16 (p));
      count[target[i]]++;
    }
  for (gint64 i = 0; i < BINS; i++)
    {
      if (use_double)
        {
          double p = (double)hist[i] / total_d;
          double cand = mass[target[i]] / (double)count[target[i]];

          kl += p * log (MAX (p, (double)eps) / MAX (cand, (double)eps));
        }
      else
        {
          float p = hist[i] / total;
          float cand = (float)(mass[target[i]] / (double)count[target[i]]);
          float ratio = ((p > eps) ? p : eps) / ((cand > eps) ? cand : eps);

          kl += (double)(p * logf (ratio));
        }
    }
  g_free (mid);
  g_free (target);
  g_free (mass);
  g_free (count);
  return use_double ? kl : (double)(float)kl;
}

/**
 * slim_histogram_quantization_error:
 * (see slim-histogram.h)
 */
double
slim_histogram_quantization_error (const float *hist,
                                   float min_val,
                                   float max_val,
                                   gint64 start_bin,
                                   gint64 end_bin,
                                   SlimHistogramMetric metric,
                                   const SlimQParamsConfig *qparams)
{
  g_return_val_if_fail (hist != NULL && qparams != NULL, 0.0);
  g_return_val_if_fail (0 <= start_bin && start_bin <= end_bin && end_bin < BINS, 0.0);

  if (metric == SLIM_HISTOGRAM_KL_DIVERGENCE)
    return slim_histogram_kl_error (hist, min_val, max_val, start_bin, end_bin, qparams, FALSE);
  return slim_histogram_l2_error (hist, min_val, max_val, start_bin, end_bin);
}

/**
 * slim_histogram_quantization_error_ref:
 * (see slim-histogram.h)
 */
double
slim_histogram_quantization_error_ref (const float *hist,
                                       float min_val,
                                       float max_val,
                                       gint64 start_bin,
                                       gint64 end_bin,
                                       SlimHistogramMetric metric,
                                       const SlimQParamsConfig *qparams)
{
  g_return_val_if_fail (hist != NULL && qparams != NULL, 0.0);
  g_return_val_if_fail (0 <= start_bin && start_bin <= end_bin && end_bin < BINS, 0.0);

  if (metric == SLIM_HISTOGRAM_KL_DIVERGENCE)
    return slim_histogram_kl_error (hist, min_val, max_val, start_bin, end_bin, qparams, TRUE);
  return slim_histogram_l2_error_ref (hist, min_val, max_val, start_bin, end_bin);
}

/**
 * slim_histogram_search:
 * (see slim-histogram.h)
 */
void
slim_histogram_search (const float *hist,
                       float min_val,
                       float max_val,
                       SlimHistogramMetric metric,
                       const SlimQParamsConfig *qparams,
                       float *out_min,
                       float *out_max,
                       gint64 *out_start_bin,
                       gint64 *out_end_bin)
{
  const float bin_width = max_val / (float)BINS - min_val / (float)BINS;
  float c_sum[BINS];
  double acc = 0.0, total, alpha = 0.0, beta = 1.0, norm_min;
  gint64 start_bin = 0, end_bin = BINS - 1;

  g_return_if_fail (hist != NULL && qparams != NULL && out_min != NULL && out_max != NULL);

  /* torch.cumsum accumulates float32 in float64 on the CPU */
  for (gint64 i = 0; i < BINS; i++)
    {
      acc += (double)hist[i];
      c_sum[i] = (float)acc;
    }
  total = (double)(float)acc;
  if (total == 0.0)
    {
      *out_min = min_val;
      *out_max = max_val;
      if (out_start_bin != NULL)
        *out_start_bin = 0;
      if (out_end_bin != NULL)
        *out_end_bin = BINS - 1;
      return;
    }

  norm_min = slim_histogram_quantization_error (hist, min_val, max_val, start_bin, end_bin, metric,
                                                qparams);
  while (alpha < beta)
    {
      const double next_alpha = alpha + SLIM_HISTOGRAM_STEPSIZE;
      const double next_beta = beta - SLIM_HISTOGRAM_STEPSIZE;
      /* c_sum[i] < next_alpha * total compares in float32 (tensor vs scalar) */
      const float lo_mass = (float)(next_alpha * total);
      const float hi_mass = (float)(next_beta * total);
      gint64 left_bin = start_bin, right_bin = end_bin;
      gint64 next_start_bin = start_bin, next_end_bin = end_bin;
      double norm;

      while (left_bin < end_bin && c_sum[left_bin] < lo_mass)
        left_bin++;
      while (right_bin > start_bin && c_sum[right_bin] > hi_mass)
        right_bin--;
      /* msModelSlim's rule (swapped against torch's) */
      if ((right_bin - start_bin) > (end_bin - left_bin))
        {
          next_end_bin = left_bin;
          beta = next_beta;
        }
      else
        {
          next_start_bin = right_bin;
          alpha = next_alpha;
        }
      if (next_start_bin == start_bin && next_end_bin == end_bin)
        continue;
      norm = slim_histogram_quantization_error (hist, min_val, max_val, next_start_bin,
                                                next_end_bin, metric, qparams);
      if (norm > norm_min)
        break;
      norm_min = norm;
      start_bin = next_start_bin;
      end_bin = next_end_bin;
    }

  /* new_min = min + bin_width * start; new_max = (end + 1) * (min / (end + 1)
   * + bin_width), all float32 */
  *out_min = min_val + bin_width * (float)start_bin;
  *out_max = (float)(end_bin + 1) * (min_val / (float)(end_bin + 1) + bin_width);
  if (out_start_bin != NULL)
    *out_start_bin = start_bin;
  if (out_end_bin != NULL)
    *out_end_bin = end_bin;
}

/**
 * slim_histogram_observer_init:
 * @self: (out caller-allocates): the observer
 * @qparams: int8, symmetric or not
 * @metric: the search's error
 */
void
slim_histogram_observer_init (SlimHistogramObserver *self,
                              const SlimQParamsConfig *qparams,
                              SlimHistogramMetric metric)
{
  g_return_if_fail (self != NULL && qparams != NULL);

  memset (self, 0, sizeof *self);
  self->qparams = *qparams;
  self->metric = metric;
  self->min_val = INFINITY;
  self->max_val = -INFINITY;
}

/**
 * slim_histogram_observer_update:
 * @self: an observer
 * @x: (array): one calibration call's activations, (n)
 * @n: elements
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
slim_histogram_observer_update (SlimHistogramObserver *self,
                                const float *x,
                                gint64 n,
                                GError **error)
{
  float x_min = INFINITY, x_max = -INFINITY;
  float clip_min = INFINITY, clip_max = -INFINITY;
  gint64 n_finite = 0;

  g_return_val_if_fail (self != NULL && n >= 0 && (n == 0 || x != NULL), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  for (gint64 i = 0; i < n; i++)
    if (isfinite (x[i]))
      {
        n_finite++;
        x_min = MIN (x_min, x[i]);
        x_max = MAX (x_max, x[i]);
      }
  if (n_finite == 0)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "histogram observer: the activation has no finite element (%" G_GINT64_FORMAT
                   " elements)",
                   n);
      return FALSE;
    }
  self->n_dropped += n - n_finite;
  self->n_updates++;
  if (x_min == x_max)
    {
      /* histc cannot bin a single value; msModelSlim skips the search */
      self->clip_min = x_min;
      self->clip_max = x_max;
      self->has_clip = TRUE;
      return TRUE;
    }

  /* NaN and infinities fall outside every finite histc range below */
  if (self->min_val == INFINITY || self->max_val == -INFINITY)
    {
      self->min_val = x_min;
      self->max_val = x_max;
      slim_histogram_histc (x, n, x_min, x_max, self->histogram);
    }
  else
    {
      const float new_min = MIN (self->min_val, x_min);
      const float new_max = MAX (self->max_val, x_max);
      float update[BINS];

      slim_histogram_histc (x, n, new_min, new_max, update);
      if (new_min == self->min_val && new_max == self->max_val)
        {
          for (gint64 b = 0; b < BINS; b++)
            self->histogram[b] = self->histogram[b] + update[b];
        }
      else
        {
          float moved[BINS];

          slim_histogram_upscale (self->histogram, self->min_val, self->max_val, new_min, new_max,
                                  moved);
          for (gint64 b = 0; b < BINS; b++)
            self->histogram[b] = update[b] + moved[b];
          self->min_val = new_min;
          self->max_val = new_max;
        }
    }

  slim_histogram_search (self->histogram, self->min_val, self->max_val, self->metric,
                         &self->qparams, &self->search_min, &self->search_max, NULL, NULL);
  /* the best bounds among this call's values inside the searched range */
  for (gint64 i = 0; i < n; i++)
    if (x[i] >= self->search_min && x[i] <= self->search_max)
      {
        clip_min = MIN (clip_min, x[i]);
        clip_max = MAX (clip_max, x[i]);
      }
  if (clip_min <= clip_max)
    {
      self->clip_min = clip_min;
      self->clip_max = clip_max;
    }
  else
    {
      self->clip_min = self->search_min;
      self->clip_max = self->search_max;
    }
  self->has_clip = TRUE;
  return TRUE;
}

/**
 * slim_histogram_observer_get_qparams:
 * @self: an observer
 * @out_clip_min: (out) (optional): lower clip bound
 * @out_clip_max: (out) (optional): upper clip bound
 * @out_scale: (out): scale of [clip_min, clip_max]
 * @out_offset: (out): offset
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
slim_histogram_observer_get_qparams (const SlimHistogramObserver *self,
                                     float *out_clip_min,
                                     float *out_clip_max,
                                     float *out_scale,
                                     float *out_offset,
                                     GError **error)
{
  g_return_val_if_fail (self != NULL && out_scale != NULL && out_offset != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!self->has_clip)
    {
      g_set_error_literal (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                           "no calibration data reached this module (histogram observer never "
                           "updated)");
      return FALSE;
    }
  if (out_clip_min != NULL)
    *out_clip_min = self->clip_min;
  if (out_clip_max != NULL)
    *out_clip_max = self->clip_max;
  slim_qparams_compute (&self->qparams, self->clip_min, self->clip_max, out_scale, out_offset);
  return TRUE;
}

/**
 * slim_histogram_fake_quantize:
 * (see slim-histogram.h)
 */
void
slim_histogram_fake_quantize (const SlimQParamsConfig *qparams,
                              const float *x,
                              gint64 n,
                              float scale,
                              float offset,
                              float clip_min,
                              float clip_max,
                              float *out)
{
  g_return_if_fail (qparams != NULL && n >= 0 && (n == 0 || (x != NULL && out != NULL)));

  slim_fake_quantize_rows (qparams, x, 1, n, &scale, &offset, 1, out);
  for (gint64 i = 0; i < n; i++)
    {
      float v = out[i];

      v = (v < clip_min) ? clip_min : v;
      out[i] = (v > clip_max) ? clip_max : v;
    }
}
