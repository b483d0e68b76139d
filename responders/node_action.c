/* SPDX-License-Identifier: Apache-2.0 */
/*
 * node_action.c - the "node" responder: kill the alert's process, or kill,
 * freeze or thaw its container, through the sensor on the node that saw it
 * (a NATS request on klaxon.node.<node>.action; sensor/actions.h has the
 * protocol and the sensor's own safety checks).
 *
 *   actions:
 *     - type: node
 *       params: {action: kill_process, signal: SIGKILL}
 *
 * The process is named by pid and start time (proc.pid, proc.start_ns), so
 * a pid reused since the alert is never hit: the sensor answers "stale".
 * Outcomes: ok -> done; not_found / stale -> done, the target is already
 * gone (recorded as such); no sensor answering, or its own timeout -> retry;
 * protected, ambiguous, bad_request, failed -> permanent.
 *
 * Threads: kx-respond.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nats/nats.h>

#include "config.h"
#include "responders.h"
#include "util.h"

#define NODE_REPLY_MAX (64 * 1024)

struct node_settings {
    int64_t timeout; /* ns to wait for the sensor's reply */
};

static const struct kx_opt node_opts[] = {
    {"timeout", KX_OPT_DURATION, "5s", offsetof(struct node_settings, timeout), 0,
     "how long the sensor may take to answer"},
    {0},
};

static const char *const node_actions[] = {"kill_process", "kill_container", "freeze_container",
                                           "thaw_container"};

static const char *param(const struct kx_config_node *params, const char *key)
{
    const struct kx_config_node *n = params ? kx_config_get(params, key) : NULL;
    return n && n->value ? n->value : NULL;
}

/* kx-respond (start-up): the params are checked here, once, not per alert. */
static int node_init(struct kx_responder *r, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct node_settings *s = r->settings;
    const struct kx_config_node *params = kx_config_get(cfg, "params");
    const char *action = param(params, "action");
    size_t before = d->n;
    bool known = false;

    for (size_t i = 0; action && i < KX_ARRAY_SIZE(node_actions); i++)
        known = known || strcmp(action, node_actions[i]) == 0;
    if (!known)
        kx_diag_add(d, params ? params : cfg,
                    "responder %s: node: params.action must be kill_process, kill_container, "
                    "freeze_container or thaw_container",
                    r->name);
    if (param(params, "signal") && (!action || strcmp(action, "kill_process") != 0))
        kx_diag_add(d, kx_config_get(params, "signal"),
                    "responder %s: node: signal applies to kill_process only", r->name);
    for (const struct kx_config_node *k = params ? params->child : NULL; k; k = k->next)
        if (strcmp(k->key, "action") != 0 && strcmp(k->key, "signal") != 0)
            kx_diag_add(d, k, "responder %s: node: unknown param \"%s\" (want action, signal)",
                        r->name, k->key);
    if (s->timeout < 100 * KX_NSEC_PER_MSEC)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "responder %s: node: timeout >= 100ms",
                    r->name);
    return d->n > before ? -EINVAL : 0;
}

/* The request for a, or NULL with the reason in audit. */
static cJSON *node_request(struct kx_responder *r, const struct kx_alert *a, const char *action,
                           const char *sig, cJSON *audit)
{
    char pid[32], start[32], cid[80], reason[300];
    cJSON *req = cJSON_CreateObject();

    if (!req)
        return NULL;
    cJSON_AddStringToObject(req, "action", action);
    if (strcmp(action, "kill_process") == 0) {
        if (!kx_alert_field_str(a, "proc.pid", pid, sizeof(pid)) ||
            !kx_alert_field_str(a, "proc.start_ns", start, sizeof(start))) {
            cJSON_AddStringToObject(audit, "reason",
                                    "the alert has no proc.pid and proc.start_ns (not from a "
                                    "Klaxon sensor?): nothing to kill safely");
            cJSON_Delete(req);
            return NULL;
        }
        cJSON_AddNumberToObject(req, "pid", strtod(pid, NULL));
        cJSON_AddStringToObject(req, "start_time", start); /* exact as a string */
        if (sig)
            cJSON_AddStringToObject(req, "signal", sig);
    } else {
        if ((!kx_alert_field_str(a, "container.full_id", cid, sizeof(cid)) &&
             !kx_alert_field_str(a, "container.id", cid, sizeof(cid))) ||
            strcmp(cid, "host") == 0 || !cid[0]) {
            cJSON_AddStringToObject(audit, "reason",
                                    "the alert is not from a container: no container to act on");
            cJSON_Delete(req);
            return NULL;
        }
        cJSON_AddStringToObject(req, "container_id", cid);
    }
    cJSON_AddStringToObject(req, "request_id", a->uuid);
    snprintf(reason, sizeof(reason), "klaxon responder %s: %s", r->name, a->rule);
    cJSON_AddStringToObject(req, "reason", reason);
    return req;
}

/* kx-respond. */
static int node_act(struct kx_responder *r, const struct kx_alert *a,
                    const struct kx_config_node *params, cJSON *audit)
{
    const struct node_settings *s = r->settings;
    const char *action = param(params, "action");
    char subject[160], node[100];

    kx_slug(a->hostname[0] ? a->hostname : "unknown", node, sizeof(node));
    snprintf(subject, sizeof(subject), "klaxon.node.%s.action", node);
    cJSON_AddStringToObject(audit, "node", a->hostname);
    cJSON_AddStringToObject(audit, "action", action);
    cJSON *req = node_request(r, a, action, param(params, "signal"), audit);
    if (!req)
        return cJSON_GetObjectItem(audit, "reason") ? -EINVAL : -EAGAIN;
    char *body = cJSON_PrintUnformatted(req);
    cJSON_AddItemToObject(audit, "request", req);
    if (!body)
        return -EAGAIN;
    if (r->dry_run) {
        cJSON_AddStringToObject(audit, "result", "dry_run");
        free(body);
        return 0;
    }

    natsMsg *reply = NULL;
    natsStatus st = natsConnection_Request(&reply, r->nats, subject, body, (int)strlen(body),
                                           s->timeout / KX_NSEC_PER_MSEC);
    free(body);
    if (st != NATS_OK) {
        char why[256];
        snprintf(why, sizeof(why), "no answer from the sensor of %s on %s: %s", a->hostname,
                 subject, natsStatus_GetText(st));
        cJSON_AddStringToObject(audit, "reason", why);
        return -EAGAIN;
    }
    cJSON *rep = natsMsg_GetDataLength(reply) <= NODE_REPLY_MAX
                     ? cJSON_ParseWithLength(natsMsg_GetData(reply),
                                             (size_t)natsMsg_GetDataLength(reply))
                     : NULL;
    natsMsg_Destroy(reply);
    if (!cJSON_IsObject(rep)) {
        cJSON_Delete(rep);
        cJSON_AddStringToObject(audit, "reason", "the sensor's reply is not a JSON object");
        return -EIO;
    }
    const cJSON *ok = cJSON_GetObjectItem(rep, "ok"), *err = cJSON_GetObjectItem(rep, "error");
    const cJSON *msg = cJSON_GetObjectItem(rep, "message");
    const char *code = cJSON_IsString(err) ? err->valuestring : "";
    int rc = 0;

    cJSON_AddItemToObject(audit, "reply", rep);
    if (cJSON_IsTrue(ok)) {
        cJSON_AddStringToObject(audit, "result", "done");
    } else if (strcmp(code, "not_found") == 0 || strcmp(code, "stale") == 0) {
        cJSON_AddStringToObject(audit, "result", "gone"); /* already not there: nothing to do */
    } else {
        char why[600];
        snprintf(why, sizeof(why), "sensor refused: %s: %s", code[0] ? code : "error",
                 cJSON_IsString(msg) ? msg->valuestring : "");
        cJSON_AddStringToObject(audit, "reason", why);
        rc = strcmp(code, "timeout") == 0 ? -EAGAIN : -EPERM;
    }
    return rc;
}

const struct kx_responder_ops kx_responder_node = {
    .abi = KX_RESPONDER_ABI,
    .name = "node",
    .desc = "kill the alert's process, or kill/freeze/thaw its container, via the node's sensor",
    .opts = node_opts,
    .settings_size = sizeof(struct node_settings),
    .init = node_init,
    .act = node_act,
};
