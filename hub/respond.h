/* SPDX-License-Identifier: Apache-2.0 */
/*
 * respond.h - the responder engine: Falco Talon's job inside the hub.
 *
 * `responders:` is an ordered list. Each accepted alert is matched against
 * it in order; a responder that matches runs its actions in order, and the
 * evaluation stops there unless it says `continue: true`. Before acting it
 * checks its guards: excluded namespaces (kube-system and klaxon by
 * default) and pod labels, a cooldown per target and a cap of actions per
 * window, both kept in the NATS KV bucket "klaxon_respond" so every hub
 * replica sees the same counts. `dry_run` decides and audits, changes
 * nothing.
 *
 * All replicas share one durable consumer ("klaxon-respond") on
 * KLAXON_EVENTS, a work queue: an alert is handled by one replica once. An
 * action that says retry (-EAGAIN) naks the alert with backoff; after
 * max_deliver attempts the failure is final. Every decision (acted,
 * dry-run, skipped and why, failed and why) is published as an
 * alert-shaped audit record on klaxon.audit.<responder> (KLAXON_AUDIT).
 *
 * Threads: kx-respond (fetch, decide, act, audit); actions run on it.
 */
#ifndef KX_HUB_RESPOND_H
#define KX_HUB_RESPOND_H

#include <stdbool.h>

#include "alert.h"
#include "config.h"

#define KX_KV_RESPOND "klaxon_respond"
#define KX_RESPOND_DURABLE "klaxon-respond"

struct kx_hub;
struct kx_respond;

/*
 * Parses and checks the responders list (seq may be NULL: none) and
 * initialises every action (its init validates what option tables cannot:
 * params, an executable, a plugin's symbol). Returns the engine (caller
 * owns; kx_respond_free) or NULL with every problem in d.
 */
struct kx_respond *kx_respond_parse(const struct kx_config_node *seq, struct kx_diag *d);
void kx_respond_free(struct kx_respond *r); /* no-op if NULL; after kx_respond_stop */

/* Creates the KV bucket and the consumer, starts kx-respond. Takes r. */
int kx_respond_start(struct kx_hub *h, struct kx_respond *r, char *err, size_t errlen);
/* Joins kx-respond (after h->stopping is set) and frees the engine. */
void kx_respond_stop(struct kx_hub *h);

/* Whether responder index i's match clause takes a (pure, for tests). */
bool kx_respond_matches(const struct kx_respond *r, size_t i, const struct kx_alert *a);

#endif
