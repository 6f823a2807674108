/*
 * autograd.c — graph nodes, grad mode, and the reverse pass.
 *
 * The reverse pass sorts the tensors reachable from the root (through out->fn->in[])
 * in topological order and marks the ones that lead to what was asked for: a leaf that
 * requires grad for backward, one of wrt[] for nv.grad.  It seeds the root's gradient and
 * visits the marked tensors from the root down: each visited non-leaf hands its gradient to
 * its node's own backward, with need[k] set only for the marked inputs (then to the pass's
 * node hook, when there is one), and the results are summed into the inputs' gradients,
 * which the pass keeps in its own state (pass_state), never in the tensors.  Leaves add gacc into .grad (or, for nv.grad, it is
 * returned).  This file knows nothing of any op: it sits below all of them.
 */
#include "autograd/autograd.h"
#include "core/config.h"

#include <stdlib.h>
#include <string.h>

/* ---- nodes ------------------------------------------------------------------------------ */
nv_node *nv_node_new(const char *name, nv_backward_fn backward, int op, int nin, nv_tensor *const *in) {
  nv_node *n = calloc(1, sizeof *n);
  if (!n) { nv_seterr("out of memory"); return NULL; }
  size_t m = (size_t)(nin ? nin : 1);
  n->in = calloc(m, sizeof *n->in);
  n->ver = calloc(m, sizeof *n->ver);
  n->need = calloc(m, 1);
  if (!n->in || !n->ver || !n->need) {
    free(n->in); free(n->ver); free(n->need); free(n);
    nv_seterr("out of memory");
    return NULL;
  }
  n->name = name;
  n->backward = backward;
  n->op = op;
  n->refcount = 1;
  n->nin = nin;
  for (int k = 0; k < nin; k++) {
    n->in[k] = nv_retain(in[k]);
    n->ver[k] = in[k] ? in[k]->st->version : 0;
    n->need[k] = in[k] && in[k]->requires_grad;
  }
  nv_stats_node(1);
  return n;
}

static void node_free_graph(nv_node *n) {
  for (int k = 0; k < n->nin; k++) { nv_release(n->in[k]); n->in[k] = NULL; }
  for (int k = 0; k < NV_MAXSAVED; k++) { nv_release(n->saved[k]); n->saved[k] = NULL; }
  n->freed = 1;
}

void nv_node_release(nv_node *n) {
  if (!n || --n->refcount > 0) return;
  node_free_graph(n);
  free(n->in);
  free(n->ver);
  free(n->need);
  free(n);
  nv_stats_node(-1);
}

void nv_attach(nv_tensor *out, nv_node *n) {
  nv_node_release(out->fn);
  out->fn = n;
  out->requires_grad = 1;
}

void nv_save(nv_node *n, int k, nv_tensor *t) {
  nv_release(n->saved[k]);
  n->saved[k] = nv_retain(t);
}

/* ---- grad mode ----------------------------------------------------------------------------- */
/* grad mode is a setting of nv_config (core/config.c) */
int nv_grad_enabled(void) { return nv_config_get()->grad_enabled; }
int nv_set_grad_enabled(int on) {
  int old = nv_config_get()->grad_enabled;
  nv_config_get()->grad_enabled = on != 0;
  return old;
}

int nv_needs_grad(int n, nv_tensor *const *ts) {
  if (!nv_config_get()->grad_enabled) return 0;
  for (int k = 0; k < n; k++)
    if (ts[k] && ts[k]->requires_grad) return 1;
  return 0;
}

/* A tensor this node's backward reads was changed in place after the forward: its gradient
 * would be silently wrong, so stop (as PyTorch does). */
static int inputs_unchanged(const nv_node *n) {
  if (!n->reads_inputs) return 1;
  for (int k = 0; k < n->nin; k++)
    if (n->in[k] && n->in[k]->st->version != n->ver[k])
      return nv_seterr("an input of %s was changed in place after it was used (version %lld, recorded %lld): "
                       "its gradient would be wrong; clone it before changing it, or change it after backward",
                       n->name, (long long)n->in[k]->st->version, (long long)n->ver[k]);
  return 1;
}

/* ---- the reverse pass -------------------------------------------------------------------------- */
typedef struct { nv_tensor **v; int n, cap; } tlist;

static int tlist_push(tlist *l, nv_tensor *t) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 64;
    nv_tensor **v = realloc(l->v, (size_t)cap * sizeof *v);
    if (!v) return nv_seterr("out of memory in backward");
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = t;
  return 1;
}

/* The state of one pass, per tensor it reaches: an open-addressing hash map from the tensor's
 * address to a slot, and per slot the visit state and the gradient flowing in.  It lives in
 * the pass, not in the tensors, so two passes over shared tensors (another thread, a hook
 * that runs backward) cannot see each other's scratch. */
enum { UNSEEN = 0, OPEN = 1, DONE = 2, LEADS = 4 };
typedef struct {
  nv_tensor **key;        /* cap entries, NULL = empty */
  int *slot;              /* cap entries */
  int cap, n;             /* table size (a power of 2), slots used */
  unsigned char *mark;    /* per slot: UNSEEN/OPEN/DONE | LEADS */
  nv_tensor **gacc;       /* per slot: gradient accumulated so far (owned) or NULL */
  int scap;               /* capacity of mark and gacc */
} pass_state;

static size_t hash_ptr(const void *p, int cap) {
  uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 32) & (size_t)(cap - 1);
}

static int find_slot(const pass_state *ps, const nv_tensor *t) {
  if (!ps->cap) return -1;
  for (size_t i = hash_ptr(t, ps->cap);; i = (i + 1) & (size_t)(ps->cap - 1)) {
    if (ps->key[i] == t) return ps->slot[i];
    if (!ps->key[i]) return -1;
  }
}

static int grow_table(pass_state *ps) {
  int cap = ps->cap ? 2 * ps->cap : 256;
  nv_tensor **key = calloc((size_t)cap, sizeof *key);
  int *slot = malloc((size_t)cap * sizeof *slot);
  if (!key || !slot) { free(key); free(slot); return nv_seterr("out of memory in backward"); }
  for (int i = 0; i < ps->cap; i++)
    if (ps->key[i]) {
      size_t j = hash_ptr(ps->key[i], cap);
      while (key[j]) j = (j + 1) & (size_t)(cap - 1);
      key[j] = ps->key[i];
      slot[j] = ps->slot[i];
    }
  free(ps->key);
  free(ps->slot);
  ps->key = key;
  ps->slot = slot;
  ps->cap = cap;
  return 1;
}

/* t's new slot (t must not have one yet), or -1 on out-of-memory */
static int add_slot(pass_state *ps, nv_tensor *t) {
  if (2 * (ps->n + 1) > ps->cap && !grow_table(ps)) return -1;
  if (ps->n == ps->scap) {
    int scap = ps->scap ? 2 * ps->scap : 128;
    unsigned char *mark = realloc(ps->mark, (size_t)scap);
    if (mark) ps->mark = mark;
    nv_tensor **gacc = mark ? realloc(ps->gacc, (size_t)scap * sizeof *gacc) : NULL;
    if (!gacc) { nv_seterr("out of memory in backward"); return -1; }
    ps->gacc = gacc;
    ps->scap = scap;
  }
  size_t i = hash_ptr(t, ps->cap);
  while (ps->key[i]) i = (i + 1) & (size_t)(ps->cap - 1);
  ps->key[i] = t;
  ps->slot[i] = ps->n;
  ps->mark[ps->n] = UNSEEN;
  ps->gacc[ps->n] = NULL;
  return ps->n++;
}

static void pass_free(pass_state *ps) {
  for (int i = 0; i < ps->n; i++) nv_release(ps->gacc[i]);
  free(ps->key);
  free(ps->slot);
  free(ps->mark);
  free(ps->gacc);
}

static int mark_of(const pass_state *ps, const nv_tensor *t) {
  int k = find_slot(ps, t);
  return k < 0 ? UNSEEN : ps->mark[k];
}

/* Post-order DFS without recursion; every listed tensor is retained and has a slot. */
static int topo_sort(pass_state *ps, nv_tensor *root, tlist *order) {
  tlist stack = {0};
  int ok = 1, k = add_slot(ps, root);
  if (k < 0) return 0;
  ps->mark[k] = OPEN;
  if (!tlist_push(&stack, root)) { ok = 0; goto out; }
  /* each stack entry is revisited until all its inputs are DONE */
  while (stack.n > 0) {
    nv_tensor *t = stack.v[stack.n - 1];
    int pushed = 0;
    if (t->fn && !t->fn->freed) {
      for (int j = 0; j < t->fn->nin; j++) {
        nv_tensor *c = t->fn->in[j];
        if (c && c->requires_grad && find_slot(ps, c) < 0) {
          int kc = add_slot(ps, c);
          if (kc < 0) { ok = 0; goto out; }
          ps->mark[kc] = OPEN;
          if (!tlist_push(&stack, c)) { ok = 0; goto out; }
          pushed = 1;
          break;
        }
      }
    }
    if (!pushed) {
      stack.n--;
      ps->mark[find_slot(ps, t)] = DONE;
      if (!tlist_push(order, nv_retain(t))) { nv_release(t); ok = 0; goto out; }
    }
  }
out:
  free(stack.v);
  return ok;
}

/* acc += g, where acc may be shared: then a new tensor replaces it. Steals g. */
static int accumulate(nv_tensor **acc, nv_tensor *g) {
  if (!*acc) { *acc = g; return 1; }
  nv_tensor *a = *acc;
  if (!(a->refcount == 1 && a->st->refcount == 1 && nv_is_contiguous(a) && a->fn == NULL)) {
    a = nv_empty_like(*acc);
    if (!a || !nv_copy_into(a, *acc)) { nv_release(a); nv_release(g); return 0; }
    nv_release(*acc);
    *acc = a;
  }
  int ok = nv_add_into(a, g);
  nv_release(g);
  return ok;
}

/* ---- counters: how often each op's backward ran and which input gradients it gave ------- */
#define NCOUNT 64
static struct { const char *name; int64_t calls, inputs[8]; } counts[NCOUNT];

static void count(const nv_node *n) {
  int i = 0;
  while (i < NCOUNT && counts[i].name && counts[i].name != n->name && strcmp(counts[i].name, n->name)) i++;
  if (i == NCOUNT) return;
  counts[i].name = n->name;
  counts[i].calls++;
  for (int k = 0; k < n->nin && k < 8; k++) counts[i].inputs[k] += n->need[k];
}

int nv_backward_counts(int i, const char **name, int64_t *calls, int64_t inputs[8]) {
  if (i < 0 || i >= NCOUNT || !counts[i].name) return 0;
  *name = counts[i].name;
  *calls = counts[i].calls;
  memcpy(inputs, counts[i].inputs, sizeof counts[i].inputs);
  return 1;
}

void nv_backward_counts_reset(void) { memset(counts, 0, sizeof counts); }

static int in_list(nv_tensor *t, int n, nv_tensor *const *l) {
  for (int i = 0; i < n; i++) if (l[i] == t) return 1;
  return 0;
}

int nv_backward_ex(nv_tensor *root, nv_tensor *grad, int retain_graph, int nwrt,
                   nv_tensor *const *wrt, nv_tensor **outg, const nv_backward_opts *opts) {
  char a[200], b[200];
  if (!root->requires_grad)
    return nv_seterr("the tensor does not require grad and has no graph (did an input have requires_grad set?)");
  if (root->fn && root->fn->freed)
    return nv_seterr("the graph was already freed by an earlier backward (pass retain_graph = true the first time)");
  if (grad) {
    if (!nv_same_shape(grad, root))
      return nv_seterr("grad %s does not match the output's shape %s",
                       nv_shape_str(a, sizeof a, grad->ndim, grad->size),
                       nv_shape_str(b, sizeof b, root->ndim, root->size));
  } else if (nv_numel(root) != 1) {
    return nv_seterr("grad can be implicit only for a single-element output, this one is %s",
                     nv_shape_str(a, sizeof a, root->ndim, root->size));
  }
  pass_state ps = {0};
  tlist order = {0};
  int ok = topo_sort(&ps, root, &order);
  /* Mark what leads to a tensor asked about (children come first in the order): wrt[] for
   * grad, a leaf for backward.  Nothing else is visited, and no other input gradient is
   * computed.  (A freed node counts, so that the pass stops with its error.) */
  for (int i = 0; ok && i < order.n; i++) {
    nv_tensor *t = order.v[i];
    int leads = nwrt ? in_list(t, nwrt, wrt) : t->fn == NULL;
    if (!leads && t->fn && t->fn->freed) leads = 1;
    for (int k = 0; !leads && t->fn && !t->fn->freed && k < t->fn->nin; k++) {
      nv_tensor *c = t->fn->in[k];
      leads = c && c->requires_grad && (mark_of(&ps, c) & LEADS);
    }
    if (leads) ps.mark[find_slot(&ps, t)] |= LEADS;
  }
  int was = nv_set_grad_enabled(0);   /* backward computations record nothing */
  if (ok) {
    /* a private seed: the caller's grad tensor must never be aliased or modified */
    nv_tensor *seed = grad ? nv_empty_like(grad) : nv_full(root->ndim, root->size, 1.0f);
    if (seed && grad) nv_copy_into(seed, grad);
    if (!seed) ok = 0;
    else ps.gacc[find_slot(&ps, root)] = seed;
  }
  for (int i = order.n - 1; ok && i >= 0; i--) {
    nv_tensor *t = order.v[i];
    const int st = find_slot(&ps, t);
    nv_tensor **tg = &ps.gacc[st];
    if (!*tg || !(ps.mark[st] & LEADS)) continue;
    if (t->fn) {
      nv_node *n = t->fn;
      if (n->freed) { ok = nv_seterr("part of the graph was already freed by an earlier backward (pass retain_graph = true)"); break; }
      int any = 0;
      for (int k = 0; k < n->nin; k++) {
        nv_tensor *c = n->in[k];
        n->need[k] = c && c->requires_grad && (mark_of(&ps, c) & LEADS);
        any |= n->need[k];
      }
      if (!any) {   /* a tensor asked about, with nothing asked about below it */
        if (!(nwrt && in_list(t, nwrt, wrt))) { nv_release(*tg); *tg = NULL; }
        continue;
      }
      nv_tensor *gsmall[8] = {0};
      nv_tensor **gin = n->nin <= 8 ? gsmall : calloc((size_t)n->nin, sizeof *gin);
      if (!gin) { ok = nv_seterr("out of memory in backward"); break; }
      count(n);
      ok = inputs_unchanged(n) && n->backward(n, t, *tg, gin);
      if (ok && opts && opts->node_hook) ok = opts->node_hook(opts->ud, n, gin);
      for (int k = 0; k < n->nin; k++) {
        nv_tensor *c = n->in[k];
        if (!gin[k]) continue;
        if (ok && c && n->need[k]) {
          if (!nv_same_shape(gin[k], c)) {
            ok = nv_seterr("internal error: %s backward produced %s for an input of %s", n->name,
                           nv_shape_str(a, sizeof a, gin[k]->ndim, gin[k]->size),
                           nv_shape_str(b, sizeof b, c->ndim, c->size));
            nv_release(gin[k]);
          } else {
            ok = accumulate(&ps.gacc[find_slot(&ps, c)], gin[k]);
          }
        } else {
          nv_release(gin[k]);
        }
      }
      if (gin != gsmall) free(gin);
      if (!retain_graph) node_free_graph(n);
      if (!(nwrt && in_list(t, nwrt, wrt))) { nv_release(*tg); *tg = NULL; }
    } else if (nwrt == 0) {
      /* a leaf: .grad += gacc */
      nv_tensor *g = *tg;
      *tg = NULL;
      if (!t->grad && (g->refcount > 1 || g->st->refcount > 1)) {
        nv_tensor *c = nv_empty_like(g);
        if (!c) { nv_release(g); ok = 0; break; }
        nv_copy_into(c, g);
        nv_release(g);
        g = c;
      }
      ok = accumulate(&t->grad, g);
    }
  }
  if (ok && nwrt) {
    for (int k = 0; k < nwrt; k++) {
      nv_tensor *w = wrt[k];
      int sw = find_slot(&ps, w);
      nv_tensor *g = sw >= 0 ? ps.gacc[sw] : NULL;
      outg[k] = g ? nv_retain(g) : nv_zeros(w->ndim, w->size);
      if (!outg[k]) {
        ok = 0;
        for (int j = 0; j < k; j++) { nv_release(outg[j]); outg[j] = NULL; }
        break;
      }
    }
  }
  for (int i = 0; i < order.n; i++) nv_release(order.v[i]);
  free(order.v);
  pass_free(&ps);
  nv_set_grad_enabled(was);
  return ok;
}

int nv_backward(nv_tensor *root, nv_tensor *grad, int retain_graph, int nwrt,
                nv_tensor *const *wrt, nv_tensor **outg) {
  return nv_backward_ex(root, grad, retain_graph, nwrt, wrt, outg, NULL);
}
