/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow.h: umbrella header of libslimflow for programs and tests.
 * Plugins include slim-plugin.h instead (it holds the subset they need).
 * Private headers (*-private.h and the others in tools/check-layers.py's
 * PRIVATE_HEADERS: slim-hdf5.h, the decoder kernels, the adapters, their
 * table, the config.json reader, tensor specs) are not part of the API and
 * are not included.
 */
#pragma once

#include "slim-plugin.h"

#include "slim-model-config-parser.h"
#include "slim-spill-memory.h"
#include "slim-spill-hdf5.h"
#include "slim-checkpoint.h"
#include "slim-workdir.h"
#include "slim-datadir.h"
#include "slim-practice.h"
#include "slim-schedule.h"
#include "slim-quant-model.h"
#include "slim-registry.h"
#include "slim-config.h"
#include "slim-config-object.h"
#include "slim-pipeline.h"
#include "slim-schema.h"
#include "slim-eval.h"
#include "slim-progress.h"
