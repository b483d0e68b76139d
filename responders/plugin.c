/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plugin.c - the "plugin" responder: loads a third-party responder from a .so
 * and delegates to it.
 *
 *   actions:
 *     - type: plugin
 *       path: /usr/lib/klaxon/klaxon-responder-sample.so
 *       settings: {file: /var/log/klaxon/labels.log}   # the plugin's own
 *       params: {note: quarantined}
 *
 * The .so exports one symbol, kx_responder_plugin: a const struct
 * kx_responder_ops built against responders.h (see there). At init the
 * library is opened with RTLD_NOW (a missing symbol fails at start-up, not
 * at the first alert) and RTLD_LOCAL (two plugins may define the same
 * names), and its ops are checked: abi equal to KX_RESPONDER_ABI, a name,
 * an act(). The `settings` map is then filled into the plugin's settings
 * struct through its option table, if it has one (unknown keys rejected,
 * "<key>_file" secrets; no environment overrides), and passed to its init()
 * as cfg. The plugin sees its own struct kx_responder: same name, dry_run
 * and nats as ours, its own settings and priv.
 *
 * Threads: kx-respond (the responder worker thread), like the plugin's own
 * callbacks. Nothing is unloaded before destroy.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "responders.h"

struct plugin_settings {
    char *path;                            /* absolute path of the .so */
    const struct kx_config_node *settings; /* borrowed: the plugin's own settings map */
};

static const struct kx_opt plugin_opts[] = {
    {"path", KX_OPT_STR, NULL, offsetof(struct plugin_settings, path), KX_OPT_REQUIRED,
     "absolute path of the responder .so (exports kx_responder_plugin)"},
    {"settings", KX_OPT_NODE, NULL, offsetof(struct plugin_settings, settings), 0,
     "the plugin's own settings: a map, checked against its option table and passed to its "
     "init"},
    {0},
};

struct plugin_state {
    void *dl;                           /* dlopen handle, closed last */
    const struct kx_responder_ops *ops; /* borrowed from the .so */
    struct kx_responder inner;          /* the instance as the plugin sees it */
    bool inited;                        /* its init succeeded: destroy is due */
};

static void plugin_unload(struct plugin_state *st)
{
    if (!st)
        return;
    if (st->inited && st->ops->destroy)
        st->ops->destroy(&st->inner);
    /* Its option table lives in the .so: release before dlclose. */
    if (st->inner.settings) {
        kx_config_release(st->ops->opts, st->inner.settings);
        free(st->inner.settings);
    }
    if (st->dl)
        dlclose(st->dl);
    free(st);
}

/* Opens path and checks its ops; 0 or -EINVAL with a diagnostic. */
static int plugin_load(struct plugin_state *st, const char *name, const char *path,
                       const struct kx_config_node *at, struct kx_diag *d)
{
    const struct kx_responder_ops *ops;
    struct stat sb;
    const char *err;

    if (path[0] != '/') {
        kx_diag_add(d, at,
                    "responder %s: plugin: path \"%s\" must be absolute (no library "
                    "search path is used)",
                    name, path);
        return -EINVAL;
    }
    if (stat(path, &sb) < 0) {
        kx_diag_add(d, at, "responder %s: plugin: path %s: %s", name, path, strerror(errno));
        return -EINVAL;
    }
    if (!S_ISREG(sb.st_mode)) {
        kx_diag_add(d, at, "responder %s: plugin: path %s is not a regular file", name, path);
        return -EINVAL;
    }
    dlerror();
    st->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!st->dl) {
        err = dlerror();
        kx_diag_add(d, at, "responder %s: plugin: cannot load %s: %s", name, path,
                    err ? err : "unknown error");
        return -EINVAL;
    }
    dlerror();
    ops = dlsym(st->dl, KX_RESPONDER_PLUGIN_SYMBOL);
    if (!ops) {
        err = dlerror();
        kx_diag_add(d, at,
                    "responder %s: plugin: %s is not a Klaxon responder plugin: no "
                    "symbol " KX_RESPONDER_PLUGIN_SYMBOL " (%s)",
                    name, path, err ? err : "it is NULL");
        return -EINVAL;
    }
    /* abi first: its offset is the one thing every layout shares. */
    if (ops->abi != KX_RESPONDER_ABI) {
        kx_diag_add(d, at,
                    "responder %s: plugin: %s was built for responder ABI %u, this hub speaks "
                    "%u: rebuild it against this hub's responders.h",
                    name, path, ops->abi, (unsigned)KX_RESPONDER_ABI);
        return -EINVAL;
    }
    if (!ops->name || !ops->name[0] || !ops->act) {
        kx_diag_add(d, at, "responder %s: plugin: %s: its %s has no %s", name, path,
                    KX_RESPONDER_PLUGIN_SYMBOL, !ops->act ? "act()" : "name");
        return -EINVAL;
    }
    if (ops->opts && !ops->settings_size) {
        kx_diag_add(d, at, "responder %s: plugin: %s has an option table but settings_size 0", name,
                    path);
        return -EINVAL;
    }
    st->ops = ops;
    return 0;
}

/* kx-respond (start-up). */
static int plugin_init(struct kx_responder *r, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct plugin_settings *s = r->settings;
    const struct kx_config_node *at = kx_config_get(cfg, "path");
    const struct kx_config_node *set = s->settings;
    const char *name = r->name ? r->name : "plugin";
    size_t before = d->n;
    struct plugin_state *st;
    int rc;

    if (!s->path || !s->path[0]) {
        kx_diag_add(d, at ? at : cfg, "responder %s: plugin: path is required", name);
        return -EINVAL;
    }
    /* "settings:" with nothing under it is no settings. */
    if (set && set->kind == KX_CFG_SCALAR && (!set->value || !set->value[0]))
        set = NULL;
    if (set && set->kind != KX_CFG_MAP) {
        kx_diag_add(d, set, "responder %s: plugin: settings must be a map", name);
        return -EINVAL;
    }
    if (!(st = calloc(1, sizeof(*st)))) {
        kx_diag_add(d, cfg, "responder %s: plugin: out of memory", name);
        return -ENOMEM;
    }
    if ((rc = plugin_load(st, name, s->path, at, d)) < 0)
        goto fail;

    st->inner.ops = st->ops;
    st->inner.name = r->name;
    st->inner.dry_run = r->dry_run;
    st->inner.nats = r->nats;
    if (st->ops->settings_size && !(st->inner.settings = calloc(1, st->ops->settings_size))) {
        kx_diag_add(d, cfg, "responder %s: plugin: out of memory", name);
        rc = -ENOMEM;
        goto fail;
    }
    if (st->ops->opts && kx_config_apply(st->ops->opts, set, st->inner.settings, NULL, d) < 0) {
        rc = -EINVAL;
        goto fail;
    }
    if (st->ops->init) {
        rc = st->ops->init(&st->inner, set, d);
        if (rc != 0) {
            /* A .so cannot reach kx_diag_add: its reason is in inner.error. */
            if (d->n == before || st->inner.error[0])
                kx_diag_add(d, set ? set : cfg, "responder %s: plugin %s (%s): %s", name,
                            st->ops->name, s->path,
                            st->inner.error[0] ? st->inner.error : strerror(rc < 0 ? -rc : EINVAL));
            /* and for the core, which reads ours when it has no diag */
            snprintf(r->error, sizeof(r->error), "%s", st->inner.error);
            rc = rc < 0 ? rc : -EINVAL;
            goto fail;
        }
    }
    st->inited = true;
    r->priv = st;
    return 0;

fail:
    plugin_unload(st);
    return rc;
}

/* kx-respond. */
static int plugin_act(struct kx_responder *r, const struct kx_alert *alert,
                      const struct kx_config_node *params, cJSON *audit)
{
    struct plugin_state *st = r->priv;
    int rc;

    /* The core may set these after init; the plugin must see ours. */
    st->inner.dry_run = r->dry_run;
    st->inner.nats = r->nats;
    st->inner.error[0] = '\0';
    st->inner.retry_after = 0;
    rc = st->ops->act(&st->inner, alert, params, audit);
    r->retry_after = st->inner.retry_after;
    if (!cJSON_GetObjectItem(audit, "plugin"))
        cJSON_AddStringToObject(audit, "plugin", st->ops->name);
    if (rc > 0) {
        /* Outside the contract: never count it as done. */
        char why[300];

        snprintf(why, sizeof(why), "plugin %s returned %d (want 0, -EAGAIN or <0)", st->ops->name,
                 rc);
        cJSON_DeleteItemFromObject(audit, "reason");
        cJSON_AddStringToObject(audit, "reason", why);
        return -EIO;
    }
    if (rc < 0 && !cJSON_GetObjectItem(audit, "reason"))
        cJSON_AddStringToObject(audit, "reason",
                                st->inner.error[0] ? st->inner.error : strerror(-rc));
    return rc;
}

/* kx-respond (shutdown). */
static void plugin_destroy(struct kx_responder *r)
{
    plugin_unload(r->priv);
    r->priv = NULL;
}

/* Not kx_responder_plugin: that is the symbol a .so exports. */
const struct kx_responder_ops kx_responder_plugin_loader = {
    .abi = KX_RESPONDER_ABI,
    .name = "plugin",
    .desc = "a third-party responder loaded from a .so (exports kx_responder_plugin)",
    .opts = plugin_opts,
    .settings_size = sizeof(struct plugin_settings),
    .init = plugin_init,
    .act = plugin_act,
    .destroy = plugin_destroy,
};
