/*
 * config.c — the one settings object (see config.h).
 */
#include "core/config.h"

static nv_config config = {
  .grad_enabled = 1,
  .conv_winograd = 1,
  .conv_prefer_winograd = -1,
  .conv_onednn = 1,
};

nv_config *nv_config_get(void) { return &config; }
