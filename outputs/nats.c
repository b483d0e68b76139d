/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nats.c - re-publishes each alert as JSON on a NATS subject for downstream
 * consumers, on a NATS server of its own choosing (often another cluster
 * or account than Klaxon's). The subject is a template, by default
 * Falcosidekick's "falco.<priority>.<rule>"; each rendered token is made
 * subject-safe (spaces, '.', '*', '>' become '_', lowercase).
 *
 * Delivery is confirmed with a flush (the server has the message): a flush
 * that times out, or a connection that is down, is retried by the core.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "bus.h"
#include "config.h"
#include "outputs.h"
#include "template.h"
#include "util.h"

#define KX_NATS_SUBJECT_MAX 256

struct natsout_settings {
    char *hostport; /* nats://host:4222 (comma list ok) */
    char *subject;  /* template; tokens separated by '.' */
    char *token;    /* a secret */
    char *creds;    /* credentials file */
    int64_t timeout; /* ns, flush confirmation */
};

struct natsout_state {
    struct kx_bus *bus;            /* owned */
    struct kx_template **tokens;   /* owned: one template per subject token */
    size_t ntokens;
};

#define N(field) offsetof(struct natsout_settings, field)

static const struct kx_opt natsout_opts[] = {
    {"hostport", KX_OPT_STR, NULL, N(hostport), KX_OPT_REQUIRED,
     "NATS URL(s), e.g. nats://nats:4222 (env <NAME>_HOSTPORT, e.g. NATS_HOSTPORT)"},
    {"subject", KX_OPT_STR, "falco.{{priority}}.{{rule}}", N(subject), 0,
     "subject template; each token is made subject-safe"},
    {"token", KX_OPT_STR, "", N(token), KX_OPT_SECRET, "auth token"},
    {"creds", KX_OPT_STR, "", N(creds), 0, "credentials file (.creds)"},
    {"timeout", KX_OPT_DURATION, "5s", N(timeout), 0, "how long a flush may take"},
    {0},
};

/* A rendered token made subject-safe, appended to out. */
static int safe_token(const char *in, size_t len, struct kx_buf *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        char ch = isalnum(c) || c == '-' || c == '_' ? (char)tolower(c) : '_';
        int rc = kx_buf_append(out, &ch, 1);

        if (rc < 0)
            return rc;
    }
    return len ? 0 : kx_buf_append(out, "_", 1); /* empty tokens are invalid */
}

static int natsout_subject(const struct natsout_state *st, const struct kx_alert *a,
                           struct kx_buf *subject)
{
    struct kx_buf tok;
    int rc = 0;

    kx_buf_init(&tok, KX_NATS_SUBJECT_MAX);
    for (size_t i = 0; i < st->ntokens && rc == 0; i++) {
        kx_buf_reset(&tok);
        if ((rc = kx_template_render(st->tokens[i], a, &tok)) == 0 &&
            (rc = i ? kx_buf_append(subject, ".", 1) : 0) == 0)
            rc = safe_token(tok.data ? tok.data : "", tok.len, subject);
    }
    kx_buf_free(&tok);
    return rc;
}

static int natsout_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct natsout_settings *s = o->settings;
    struct kx_bus_opts bo = {0};
    struct natsout_state *st;
    char err[256], *copy, *save = NULL, *tok;
    size_t before = d->n;

    if (!s->hostport || strncmp(s->hostport, "nats://", 7) != 0)
        kx_diag_add(d, kx_config_get(cfg, "hostport"),
                    "output %s: hostport must be a nats:// URL", o->name);
    if (!s->subject || !*s->subject || s->subject[0] == '.' ||
        s->subject[strlen(s->subject) - 1] == '.' || strstr(s->subject, ".."))
        kx_diag_add(d, kx_config_get(cfg, "subject"),
                    "output %s: subject \"%s\" has an empty token", o->name,
                    s->subject ? s->subject : "");
    if (s->timeout <= 0)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "output %s: timeout must be positive",
                    o->name);
    if (d->n > before)
        return -EINVAL;
    if (!(st = calloc(1, sizeof(*st))))
        return -ENOMEM;
    o->priv = st;
    if (!(copy = strdup(s->subject)) ||
        !(st->tokens = calloc(strlen(s->subject) / 2 + 2, sizeof(*st->tokens)))) {
        free(copy);
        return -ENOMEM;
    }
    /* Split on the dots outside {{ }}: a template inside a token may not
     * contain one (field names do: {{ k8s.ns.name }}). */
    for (tok = copy; tok && *tok;) {
        char *p = tok, *end;

        while (*p && *p != '.')
            p = strncmp(p, "{{", 2) == 0 && (end = strstr(p, "}}")) ? end + 2 : p + 1;
        save = *p ? p + 1 : NULL;
        *p = '\0';
        if (!(st->tokens[st->ntokens] = kx_template_compile(tok, err, sizeof(err)))) {
            kx_diag_add(d, kx_config_get(cfg, "subject"), "output %s: subject: %s", o->name, err);
            free(copy);
            return -EINVAL;
        }
        st->ntokens++;
        tok = save;
    }
    free(copy);
    bo.url = s->hostport;
    bo.name = "klaxon-hub-output";
    bo.token = s->token && *s->token ? s->token : NULL;
    bo.creds_file = s->creds && *s->creds ? s->creds : NULL;
    bo.retry_on_failed_connect = true; /* down at start: retried by the core, not fatal */
    if (!(st->bus = kx_bus_connect(&bo, err, sizeof(err)))) {
        kx_diag_add(d, kx_config_get(cfg, "hostport"), "output %s: %s", o->name, err);
        return -EINVAL;
    }
    return 0;
}

static int natsout_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct natsout_settings *s = o->settings;
    struct natsout_state *st = o->priv;
    struct kx_buf subject;
    natsStatus ns;
    int rc = 0;

    if (!kx_bus_connected(st->bus)) {
        snprintf(o->error, sizeof(o->error), "nats: not connected to %s", s->hostport);
        return -EAGAIN;
    }
    kx_buf_init(&subject, KX_NATS_SUBJECT_MAX);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *json = kx_alert_to_json(batch[i]);

        kx_buf_reset(&subject);
        if (!json || natsout_subject(st, batch[i], &subject) < 0) {
            snprintf(o->error, sizeof(o->error), "nats: cannot build alert %s (subject over %d "
                     "bytes?)", batch[i]->uuid, KX_NATS_SUBJECT_MAX);
            free(json);
            rc = json ? -EINVAL : -EAGAIN;
            break;
        }
        ns = natsConnection_Publish(st->bus->nc, subject.data, json, (int)strlen(json));
        free(json);
        if (ns != NATS_OK) {
            snprintf(o->error, sizeof(o->error), "nats: publish: %s", natsStatus_GetText(ns));
            rc = -EAGAIN;
        }
    }
    kx_buf_free(&subject);
    if (rc == 0 && (ns = natsConnection_FlushTimeout(st->bus->nc, s->timeout / 1000000)) !=
                       NATS_OK) {
        snprintf(o->error, sizeof(o->error), "nats: flush: %s", natsStatus_GetText(ns));
        rc = -EAGAIN;
    }
    return rc;
}

static void natsout_destroy(struct kx_output *o)
{
    struct natsout_state *st = o->priv;

    if (!st)
        return;
    kx_bus_close(st->bus);
    for (size_t i = 0; i < st->ntokens; i++)
        kx_template_free(st->tokens[i]);
    free(st->tokens);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_nats = {
    .name = "nats",
    .desc = "re-publish each alert as JSON on a NATS subject (falco.<priority>.<rule>)",
    .opts = natsout_opts,
    .settings_size = sizeof(struct natsout_settings),
    .max_batch = 100,
    .init = natsout_init,
    .deliver = natsout_deliver,
    .destroy = natsout_destroy,
};
