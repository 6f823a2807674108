/*
 * config.h — the core's settings in one object, read through nv_config_get() where they
 * steer a computation (nv.config and nv.no_grad in Lua set them).  One object per process:
 * a host that wants per-call settings saves and restores it around the call.
 */
#ifndef NV_CONFIG_H
#define NV_CONFIG_H

typedef struct nv_config {
  int grad_enabled;          /* ops record the graph when an input requires grad (default 1) */
  int conv_winograd;         /* eligible 3x3 convolutions may run Winograd's F(2x2,3x3) (1) */
  int conv_prefer_winograd;  /* Winograd before oneDNN: 1 yes, 0 no, -1 by the CPU (default) */
  int conv_onednn;           /* convolutions try oneDNN first (1) */
} nv_config;

/* the settings in force; borrowed, writable by the binding and autograd's grad mode */
nv_config *nv_config_get(void);

#endif
