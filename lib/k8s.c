/* SPDX-License-Identifier: Apache-2.0 */
/*
 * k8s.c - the Kubernetes API client: configuration (service account or
 * kubeconfig), classified requests and the list+watch loop (the contract is
 * in k8s.h).
 *
 * Transfers go through a curl multi handle although there is only ever one
 * at a time: curl_multi_poll() can be woken from another thread with
 * curl_multi_wakeup(), which is how kx_k8s_cancel() ends a watch that has
 * been idle for minutes (or a backoff sleep) within milliseconds. The multi
 * handle also holds the connection cache, so consecutive requests reuse one
 * TLS connection.
 *
 * Trust: with a CA configured (file or -data), only that CA is trusted, not
 * the system bundle, as kubectl does. Redirects are never followed (they
 * would carry the bearer token elsewhere). Messages never contain the token,
 * key material or the query string.
 */
#include "httpc.h"
#include "k8s.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#ifndef KX_VERSION
#define KX_VERSION "dev"
#endif

#define K8S_DEFAULT_TIMEOUT (10 * KX_NSEC_PER_SEC)
#define K8S_DEFAULT_CONNECT (5 * KX_NSEC_PER_SEC)
#define K8S_DEFAULT_WATCH (300 * KX_NSEC_PER_SEC)
#define K8S_DEFAULT_BACKOFF_MIN KX_NSEC_PER_SEC
#define K8S_DEFAULT_BACKOFF_MAX (30 * KX_NSEC_PER_SEC)
#define K8S_DEFAULT_TOKEN_RELOAD (60 * KX_NSEC_PER_SEC)
#define K8S_MAX_RETRY_AFTER (300 * KX_NSEC_PER_SEC) /* longer hints are capped */
#define K8S_TOKEN_MAX (64 * 1024)                   /* token file bytes */
#define K8S_ERROR_BODY_MAX (64 * 1024)              /* error body kept from a watch */
#define K8S_RV_MAX 256                              /* resourceVersion bytes */
#define K8S_PAGE_DEFAULT 500
#define K8S_PATH_SHOWN 200 /* path bytes in messages */
#define K8S_URL_MAX 8192

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static void __attribute__((format(printf, 3, 4)))
errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *nonempty(const char *s)
{
    return s && s[0] ? s : NULL;
}

/* Strips leading and trailing whitespace in place (tokens end with '\n'). */
static char *trim(char *s)
{
    size_t n;

    while (isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A bearer token goes into a header line: printable ASCII only. */
static bool token_ok(const char *t)
{
    if (!t || !t[0])
        return false;
    for (; *t; t++) {
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
            return false;
    }
    return true;
}

/* Whole file, trimmed, as a new string; NULL + errno. */
static char *read_trimmed(const char *path, size_t max)
{
    char *data = kx_read_file(path, max, NULL), *t, *out;

    if (!data)
        return NULL;
    t = trim(data);
    out = strdup(t);
    free(data);
    if (!out)
        errno = ENOMEM;
    return out;
}

/* Standard base64 (whitespace ignored, padding optional) into a new
 * NUL-terminated buffer; 0, -EINVAL (not base64) or -ENOMEM. */
static int b64_decode(const char *in, char **out, size_t *outlen)
{
    size_t n = strlen(in);
    char *o = malloc(n / 4 * 3 + 4);
    ssize_t len;

    *out = NULL;
    *outlen = 0;
    if (!o)
        return -ENOMEM;
    len = kx_base64_decode(in, n, true, o, n / 4 * 3 + 4);
    if (len <= 0) {
        free(o);
        return -EINVAL;
    }
    *out = o;
    *outlen = (size_t)len;
    return 0;
}

int kx_k8s_query_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (!s || !out || outlen == 0)
        return -EINVAL;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            if (o + 1 >= outlen)
                goto too_long;
            out[o++] = (char)ch;
        } else {
            if (o + 3 >= outlen)
                goto too_long;
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return 0;
too_long:
    out[0] = '\0';
    return -ENAMETOOLONG;
}

/* ------------------------------------------------------------------------ */
/* Modes and settings                                                        */
/* ------------------------------------------------------------------------ */

static const char *const mode_names[] = {"auto", "incluster", "kubeconfig", "off"};

int kx_k8s_mode_parse(const char *s, enum kx_k8s_mode *out)
{
    if (!s || !out)
        return -EINVAL;
    if (s[0] == '\0') {
        *out = KX_K8S_MODE_AUTO;
        return 0;
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(mode_names); i++) {
        if (strcasecmp(s, mode_names[i]) == 0) {
            *out = (enum kx_k8s_mode)i;
            return 0;
        }
    }
    if (strcasecmp(s, "in-cluster") == 0) {
        *out = KX_K8S_MODE_INCLUSTER;
        return 0;
    }
    return -EINVAL;
}

const char *kx_k8s_mode_name(enum kx_k8s_mode m)
{
    return (unsigned)m < KX_ARRAY_SIZE(mode_names) ? mode_names[m] : "?";
}

/* the settings struct alone: its rows at offset 0 of a wrapper */
struct k8s_settings_only {
    struct kx_k8s_settings s;
};
const struct kx_opt kx_k8s_settings_table[] = {
    KX_K8S_OPTS(struct k8s_settings_only, s),
    {NULL, 0, NULL, 0, 0, NULL},
};

int kx_k8s_settings_opts(const struct kx_k8s_settings *s, struct kx_k8s_opts *o,
                         const struct kx_config_node *at, struct kx_diag *d)
{
    memset(o, 0, sizeof(*o));
    if (kx_k8s_mode_parse(s->mode ? s->mode : "", &o->mode) < 0) {
        kx_diag_add(d, at,
                    "kubernetes.mode: \"%.40s\" is not one of auto, incluster, "
                    "kubeconfig, off",
                    s->mode);
        return -EINVAL;
    }
    o->kubeconfig = nonempty(s->kubeconfig);
    o->context = nonempty(s->context);
    o->sa_dir = nonempty(s->serviceaccount_dir);
    o->server = nonempty(s->server);
    o->timeout = s->timeout;
    o->connect_timeout = s->connect_timeout;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

/* Overwrites a secret before freeing it. */
static void free_secret(char *s, size_t len)
{
    if (!s)
        return;
    if (len == 0)
        len = strlen(s);
    explicit_bzero(s, len);
    free(s);
}

void kx_k8s_config_release(struct kx_k8s_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->server);
    free(cfg->source);
    free(cfg->ns);
    free_secret(cfg->token, 0);
    free(cfg->token_file);
    free(cfg->ca_file);
    free(cfg->ca_data);
    free(cfg->cert_file);
    free(cfg->cert_data);
    free(cfg->key_file);
    free_secret(cfg->key_data, cfg->key_len);
    memset(cfg, 0, sizeof(*cfg));
}

/* "https://host:port" or "http://..." without trailing slashes; -EINVAL. */
static int set_server(struct kx_k8s_config *cfg, const char *url, const char *where, char *err,
                      size_t errlen)
{
    size_t n;

    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        errf(err, errlen, "%s: server \"%.100s\" must start with https:// (or http://)", where,
             url);
        return -EINVAL;
    }
    if (strpbrk(url, " \t\r\n?#")) {
        errf(err, errlen,
             "%s: server \"%.100s\" must be a plain URL without spaces, query or "
             "fragment",
             where, url);
        return -EINVAL;
    }
    free(cfg->server);
    if (!(cfg->server = strdup(url)))
        return -ENOMEM;
    n = strlen(cfg->server);
    while (n > 0 && cfg->server[n - 1] == '/')
        cfg->server[--n] = '\0';
    return 0;
}

static int in_cluster(const struct kx_k8s_opts *o, struct kx_k8s_config *cfg, char *err,
                      size_t errlen)
{
    const char *host = nonempty(getenv("KUBERNETES_SERVICE_HOST"));
    const char *port = nonempty(getenv("KUBERNETES_SERVICE_PORT"));
    const char *dir = o && nonempty(o->sa_dir) ? o->sa_dir : KX_K8S_SA_DIR;
    char path[4096], url[1024];
    char *ns;
    int e;

    if (!host || !port) {
        errf(err, errlen,
             "kubernetes in-cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT "
             "are not set (not running in a pod?); use mode kubeconfig outside a "
             "cluster");
        return -ENOENT;
    }
    snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    if ((e = set_server(cfg, url, "kubernetes in-cluster", err, errlen)) < 0)
        return e;
    if (asprintf(&cfg->source, "in-cluster service account (%s)", dir) < 0) {
        cfg->source = NULL;
        return -ENOMEM;
    }

    snprintf(path, sizeof(path), "%s/token", dir);
    if (!(cfg->token_file = strdup(path)))
        return -ENOMEM;
    cfg->token = read_trimmed(path, K8S_TOKEN_MAX);
    if (!cfg->token || cfg->token[0] == '\0') {
        e = cfg->token ? ENODATA : errno;
        errf(err, errlen,
             "kubernetes in-cluster: cannot read the service account token %s: %s "
             "(is automountServiceAccountToken disabled for the pod?)",
             path, e == ENODATA ? "file is empty" : strerror(e));
        return -ENOENT;
    }
    if (!token_ok(cfg->token)) {
        errf(err, errlen,
             "kubernetes in-cluster: the token in %s contains spaces or control "
             "characters",
             path);
        return -EINVAL;
    }

    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    if (access(path, R_OK) != 0) {
        e = errno;
        errf(err, errlen, "kubernetes in-cluster: cannot read the cluster CA %s: %s", path,
             strerror(e));
        return -ENOENT;
    }
    if (!(cfg->ca_file = strdup(path)))
        return -ENOMEM;

    snprintf(path, sizeof(path), "%s/namespace", dir);
    ns = read_trimmed(path, 256);
    if (ns && ns[0]) {
        cfg->ns = ns;
    } else {
        free(ns);
        if (!(cfg->ns = strdup("default")))
            return -ENOMEM;
    }
    return 0;
}

/* --- kubeconfig --------------------------------------------------------- */

/* Context for parsing one kubeconfig: where messages point. */
struct kc {
    const struct kx_config_doc *doc;
    char dir[4096]; /* directory of the file, for relative paths */
    char *err;
    size_t errlen;
};

static void __attribute__((format(printf, 3, 4)))
kc_err(struct kc *k, const struct kx_config_node *at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (at)
        errf(k->err, k->errlen, "%s:%d:%d: kubeconfig: %s", at->file ? at->file : k->doc->file,
             at->line, at->col, msg);
    else
        errf(k->err, k->errlen, "%s: kubeconfig: %s", k->doc->file, msg);
}

/* A scalar child of map, NULL when absent or empty; -EINVAL if it is not
 * a scalar. */
static int kc_str(struct kc *k, const struct kx_config_node *map, const char *key, const char **out,
                  const struct kx_config_node **node)
{
    const struct kx_config_node *n = kx_config_get(map, key);

    *out = NULL;
    if (node)
        *node = n;
    if (!n)
        return 0;
    if (n->kind != KX_CFG_SCALAR) {
        kc_err(k, n, "\"%s\" must be a string", key);
        return -EINVAL;
    }
    *out = nonempty(n->value);
    return 0;
}

/*
 * In root[list] (a list of {name: ..., <inner>: {...}}), the <inner> map of
 * the entry called name. ref is the node that named it (for messages).
 */
static int kc_named(struct kc *k, const char *list, const char *inner, const char *name,
                    const struct kx_config_node *ref, const struct kx_config_node **out)
{
    const struct kx_config_node *seq = kx_config_get(k->doc->root, list);

    *out = NULL;
    if (seq && seq->kind != KX_CFG_SEQ) {
        kc_err(k, seq, "\"%s\" must be a list", list);
        return -EINVAL;
    }
    for (const struct kx_config_node *it = seq ? seq->child : NULL; it; it = it->next) {
        const struct kx_config_node *nm = kx_config_get(it, "name"), *body;

        if (it->kind != KX_CFG_MAP) {
            kc_err(k, it, "each entry of \"%s\" must be a map with name and %s", list, inner);
            return -EINVAL;
        }
        if (!nm || nm->kind != KX_CFG_SCALAR || strcmp(nm->value, name) != 0)
            continue;
        body = kx_config_get(it, inner);
        if (!body || body->kind != KX_CFG_MAP) {
            kc_err(k, body ? body : it, "%s \"%s\" has no \"%s\" map", inner, name, inner);
            return -EINVAL;
        }
        *out = body;
        return 0;
    }
    kc_err(k, ref, "%s \"%s\" is not defined in \"%s\"", inner, name, list);
    return -EINVAL;
}

/* A path from the kubeconfig, made absolute against the file's directory
 * and checked to be readable. */
static int kc_path(struct kc *k, const struct kx_config_node *at, const char *what,
                   const char *path, char **out)
{
    int n;

    if (path[0] == '/' || k->dir[0] == '\0')
        n = asprintf(out, "%s", path);
    else
        n = asprintf(out, "%s/%s", k->dir, path);
    if (n < 0) {
        *out = NULL;
        return -ENOMEM;
    }
    if (access(*out, R_OK) != 0) {
        int e = errno;

        kc_err(k, at, "%s \"%s\": %s", what, *out, strerror(e));
        free(*out);
        *out = NULL;
        return -e;
    }
    return 0;
}

/* Decodes a "-data" field. */
static int kc_data(struct kc *k, const struct kx_config_node *at, const char *key, const char *b64,
                   char **out, size_t *len)
{
    int e = b64_decode(b64, out, len);

    if (e == -EINVAL)
        kc_err(k, at, "\"%s\" is not valid base64", key);
    return e;
}

static int kc_cluster(struct kc *k, const struct kx_config_node *cl, const char *name,
                      struct kx_k8s_config *cfg)
{
    const struct kx_config_node *n_server, *n_ca, *n_cad, *n_ins, *n;
    const char *server, *ca, *cad, *ins, *v;
    char where[300];
    int e;

    if ((e = kc_str(k, cl, "server", &server, &n_server)) < 0 ||
        (e = kc_str(k, cl, "certificate-authority", &ca, &n_ca)) < 0 ||
        (e = kc_str(k, cl, "certificate-authority-data", &cad, &n_cad)) < 0 ||
        (e = kc_str(k, cl, "insecure-skip-tls-verify", &ins, &n_ins)) < 0)
        return e;
    if (!server) {
        kc_err(k, n_server ? n_server : cl, "cluster \"%s\" has no server", name);
        return -EINVAL;
    }
    if (n_server)
        snprintf(where, sizeof(where), "%s:%d:%d: kubeconfig: cluster \"%.60s\"", k->doc->file,
                 n_server->line, n_server->col, name);
    else
        snprintf(where, sizeof(where), "%s: kubeconfig", k->doc->file);
    if ((e = set_server(cfg, server, where, k->err, k->errlen)) < 0)
        return e;
    if (ins) {
        if (strcasecmp(ins, "true") == 0) {
            cfg->insecure = true;
        } else if (strcasecmp(ins, "false") != 0) {
            kc_err(k, n_ins, "insecure-skip-tls-verify must be true or false");
            return -EINVAL;
        }
    }
    if (cad) {
        if ((e = kc_data(k, n_cad, "certificate-authority-data", cad, &cfg->ca_data,
                         &cfg->ca_len)) < 0)
            return e;
    } else if (ca) {
        if ((e = kc_path(k, n_ca, "certificate-authority", ca, &cfg->ca_file)) < 0)
            return e;
    }
    /* What would silently change where or how we connect is refused. */
    if ((e = kc_str(k, cl, "proxy-url", &v, &n)) < 0)
        return e;
    if (v) {
        kc_err(k, n,
               "cluster \"%s\": proxy-url is not supported; connect directly or set "
               "kubernetes.server",
               name);
        return -ENOTSUP;
    }
    if ((e = kc_str(k, cl, "tls-server-name", &v, &n)) < 0)
        return e;
    if (v) {
        kc_err(k, n,
               "cluster \"%s\": tls-server-name is not supported; use a server URL whose "
               "host name is in the certificate",
               name);
        return -ENOTSUP;
    }
    return 0;
}

static int kc_user(struct kc *k, const struct kx_config_node *u, const char *name,
                   struct kx_k8s_config *cfg)
{
    const struct kx_config_node *n_tok, *n_tf, *n_cc, *n_ccd, *n_ck, *n_ckd, *n;
    const char *tok, *tf, *cc, *ccd, *ck, *ckd;
    static const char *const unsupported[] = {"exec", "auth-provider", "username", "password"};
    int e;

    for (size_t i = 0; i < KX_ARRAY_SIZE(unsupported); i++) {
        n = kx_config_get(u, unsupported[i]);
        if (n && !(n->kind == KX_CFG_SCALAR && n->value[0] == '\0')) {
            kc_err(k, n,
                   "user \"%s\": %s is not supported (%s); use token, tokenFile or a "
                   "client certificate",
                   name, unsupported[i],
                   i < 2 ? "credential plugins are not run" : "basic auth is not supported");
            return -ENOTSUP;
        }
    }
    if ((e = kc_str(k, u, "token", &tok, &n_tok)) < 0 ||
        (e = kc_str(k, u, "tokenFile", &tf, &n_tf)) < 0 ||
        (e = kc_str(k, u, "client-certificate", &cc, &n_cc)) < 0 ||
        (e = kc_str(k, u, "client-certificate-data", &ccd, &n_ccd)) < 0 ||
        (e = kc_str(k, u, "client-key", &ck, &n_ck)) < 0 ||
        (e = kc_str(k, u, "client-key-data", &ckd, &n_ckd)) < 0)
        return e;
    if (tok && !token_ok(tok)) {
        kc_err(k, n_tok, "user \"%s\": the token contains spaces or control characters", name);
        return -EINVAL;
    }
    if (tok && !(cfg->token = strdup(tok)))
        return -ENOMEM;
    if (tf) {
        if ((e = kc_path(k, n_tf, "tokenFile", tf, &cfg->token_file)) < 0)
            return e;
        /* A token given inline is used first (client-go does the same);
         * the file takes over at the first reload. */
        if (!cfg->token) {
            cfg->token = read_trimmed(cfg->token_file, K8S_TOKEN_MAX);
            if (!cfg->token || cfg->token[0] == '\0') {
                e = cfg->token ? ENODATA : errno;
                kc_err(k, n_tf, "tokenFile \"%s\": %s", cfg->token_file,
                       e == ENODATA ? "file is empty" : strerror(e));
                return cfg->token ? -EINVAL : -e;
            }
            if (!token_ok(cfg->token)) {
                kc_err(k, n_tf,
                       "tokenFile \"%s\": the token contains spaces or control "
                       "characters",
                       cfg->token_file);
                return -EINVAL;
            }
        }
    }
    if (ccd)
        e = kc_data(k, n_ccd, "client-certificate-data", ccd, &cfg->cert_data, &cfg->cert_len);
    else if (cc)
        e = kc_path(k, n_cc, "client-certificate", cc, &cfg->cert_file);
    if (e < 0)
        return e;
    if (ckd)
        e = kc_data(k, n_ckd, "client-key-data", ckd, &cfg->key_data, &cfg->key_len);
    else if (ck)
        e = kc_path(k, n_ck, "client-key", ck, &cfg->key_file);
    if (e < 0)
        return e;
    if ((cc || ccd) != (ck || ckd)) {
        kc_err(k, u,
               "user \"%s\": a client certificate needs its key and a key its certificate "
               "(client-certificate[-data] with client-key[-data])",
               name);
        return -EINVAL;
    }
    return 0;
}

int kx_k8s_kubeconfig_parse(const struct kx_config_doc *doc, const char *context,
                            struct kx_k8s_config *cfg, char *err, size_t errlen)
{
    struct kc k = {.doc = doc, .err = err, .errlen = errlen};
    const struct kx_config_node *root, *n_cur = NULL, *ctx, *n_cl, *n_user, *n_ns, *cl, *user;
    const char *cur, *clname, *uname, *ns, *slash;
    int e;

    memset(cfg, 0, sizeof(*cfg));
    if (!doc || !doc->file) {
        errf(err, errlen, "kubeconfig: no document");
        return -EINVAL;
    }
    root = doc->root;
    slash = strrchr(doc->file, '/');
    if (slash && (size_t)(slash - doc->file) < sizeof(k.dir))
        snprintf(k.dir, sizeof(k.dir), "%.*s", (int)(slash - doc->file), doc->file);
    if (slash == doc->file)
        snprintf(k.dir, sizeof(k.dir), "/");
    if (!root || root->kind != KX_CFG_MAP) {
        kc_err(&k, root, "the file must be a map (apiVersion, kind: Config, clusters, ...)");
        return -EINVAL;
    }

    if (nonempty(context)) {
        cur = context;
    } else {
        if ((e = kc_str(&k, root, "current-context", &cur, &n_cur)) < 0)
            goto fail;
        if (!cur) {
            kc_err(&k, n_cur,
                   "no current-context is set; run \"kubectl config use-context "
                   "NAME\" or configure kubernetes.context");
            e = -EINVAL;
            goto fail;
        }
    }
    if ((e = kc_named(&k, "contexts", "context", cur, n_cur, &ctx)) < 0)
        goto fail;
    if ((e = kc_str(&k, ctx, "cluster", &clname, &n_cl)) < 0 ||
        (e = kc_str(&k, ctx, "user", &uname, &n_user)) < 0 ||
        (e = kc_str(&k, ctx, "namespace", &ns, &n_ns)) < 0)
        goto fail;
    if (!clname) {
        kc_err(&k, n_cl ? n_cl : ctx, "context \"%s\" names no cluster", cur);
        e = -EINVAL;
        goto fail;
    }
    if ((e = kc_named(&k, "clusters", "cluster", clname, n_cl, &cl)) < 0 ||
        (e = kc_cluster(&k, cl, clname, cfg)) < 0)
        goto fail;
    if (uname) {
        if ((e = kc_named(&k, "users", "user", uname, n_user, &user)) < 0 ||
            (e = kc_user(&k, user, uname, cfg)) < 0)
            goto fail;
    }
    if (!(cfg->ns = strdup(ns ? ns : "default")) ||
        asprintf(&cfg->source, "kubeconfig %s, context %s", doc->file, cur) < 0) {
        cfg->source = NULL;
        e = -ENOMEM;
        goto fail;
    }
    return 0;
fail:
    if (e == -ENOMEM)
        errf(err, errlen, "%s: kubeconfig: out of memory", doc->file);
    kx_k8s_config_release(cfg);
    return e;
}

/* The kubeconfig to use: explicit path, else the first existing entry of
 * $KUBECONFIG, else ~/.kube/config. *explicit says whether the user named
 * it (then a missing file is an error, not "no kubeconfig"). */
static int kubeconfig_path(const struct kx_k8s_opts *o, char *out, size_t len, bool *explicit)
{
    const char *env = nonempty(getenv("KUBECONFIG")), *home;

    *explicit = true;
    if (o && nonempty(o->kubeconfig)) {
        snprintf(out, len, "%s", o->kubeconfig);
        return 0;
    }
    if (env) {
        const char *p = env;

        /* A list "a:b:c": kubectl merges them; we take the first that
         * exists (merging is not supported). */
        while (*p) {
            size_t n = strcspn(p, ":");

            if (n > 0 && n < len) {
                snprintf(out, len, "%.*s", (int)n, p);
                if (access(out, F_OK) == 0)
                    return 0;
            }
            p += n;
            if (*p == ':')
                p++;
        }
        snprintf(out, len, "%.*s", (int)strcspn(env, ":"), env);
        return 0;
    }
    *explicit = false;
    home = nonempty(getenv("HOME"));
    if (!home) {
        struct passwd *pw = getpwuid(getuid());

        home = pw ? pw->pw_dir : NULL;
    }
    if (!home)
        return -ENOENT;
    snprintf(out, len, "%s/.kube/config", home);
    return 0;
}

static int kubeconfig_load(const struct kx_k8s_opts *o, const char *path, struct kx_k8s_config *cfg,
                           char *err, size_t errlen)
{
    struct kx_diag d = {0};
    struct kx_config_doc *doc = kx_config_load(path, &d);
    int e;

    if (!doc) {
        e = errno ? errno : EINVAL;
        if (d.n > 0)
            errf(err, errlen, "kubeconfig: %s%s", d.msgs[0], d.n > 1 ? " (and more errors)" : "");
        else
            errf(err, errlen, "kubeconfig %s: cannot load: %s", path, strerror(e));
        kx_diag_free(&d);
        return e == ENOENT ? -ENOENT : -EINVAL;
    }
    kx_diag_free(&d);
    e = kx_k8s_kubeconfig_parse(doc, o ? o->context : NULL, cfg, err, errlen);
    kx_config_free(doc);
    return e;
}

int kx_k8s_config_load(const struct kx_k8s_opts *o, struct kx_k8s_config *cfg, char *err,
                       size_t errlen)
{
    enum kx_k8s_mode mode = o ? o->mode : KX_K8S_MODE_AUTO;
    char path[4096];
    bool explicit = false;
    int e;

    memset(cfg, 0, sizeof(*cfg));
    if (err && errlen)
        err[0] = '\0';
    switch (mode) {
    case KX_K8S_MODE_OFF:
        errf(err, errlen, "kubernetes: disabled (mode off)");
        return -ENOTSUP;
    case KX_K8S_MODE_INCLUSTER:
        e = in_cluster(o, cfg, err, errlen);
        break;
    case KX_K8S_MODE_KUBECONFIG:
        if (kubeconfig_path(o, path, sizeof(path), &explicit) < 0) {
            errf(err, errlen,
                 "kubernetes: no kubeconfig path (HOME is not set); configure "
                 "kubernetes.kubeconfig");
            return -ENOENT;
        }
        e = kubeconfig_load(o, path, cfg, err, errlen);
        break;
    case KX_K8S_MODE_AUTO:
        if (nonempty(getenv("KUBERNETES_SERVICE_HOST"))) {
            e = in_cluster(o, cfg, err, errlen);
            break;
        }
        if (kubeconfig_path(o, path, sizeof(path), &explicit) < 0 ||
            (!explicit && access(path, F_OK) != 0)) {
            errf(err, errlen,
                 "kubernetes: not in a cluster (KUBERNETES_SERVICE_HOST is not set) "
                 "and no kubeconfig (KUBECONFIG is not set, ~/.kube/config does not "
                 "exist); set kubernetes.kubeconfig, or mode off to run without "
                 "the API");
            return -ENOENT;
        }
        e = kubeconfig_load(o, path, cfg, err, errlen);
        break;
    default:
        errf(err, errlen, "kubernetes: unknown mode %d", (int)mode);
        return -EINVAL;
    }
    if (e == 0 && o && nonempty(o->server))
        e = set_server(cfg, o->server, "kubernetes.server", err, errlen);
    if (e < 0)
        kx_k8s_config_release(cfg);
    return e;
}

/* ------------------------------------------------------------------------ */
/* Status bodies and classification                                          */
/* ------------------------------------------------------------------------ */

int kx_k8s_classify(long status)
{
    if (status >= 200 && status <= 299)
        return 0;
    switch (status) {
    case 401:
    case 403:
        return -EACCES;
    case 404:
        return -ENOENT;
    case 409:
        return -EEXIST;
    case 410:
        return -ESTALE;
    case 429:
        return -EAGAIN;
    default:
        return status >= 500 && status <= 599 ? -EAGAIN : -EINVAL;
    }
}

/* Printable, one line: control characters become spaces, runs collapse. */
static void one_line(const char *s, size_t n, char *out, size_t len)
{
    size_t o = 0;
    bool space = false;

    for (size_t i = 0; i < n && s[i] && o + 1 < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x20 || ch == 0x7f || ch == ' ') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < len)
            out[o++] = ' ';
        space = false;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
}

int64_t kx_k8s_status_message(long status, const char *body, size_t len, char *out, size_t outlen,
                              char *reason, size_t reasonlen)
{
    const char *phrase = kx_http_status_phrase(status);
    char text[1024];
    int64_t retry = 0;
    cJSON *j = NULL;

    if (reason && reasonlen)
        reason[0] = '\0';
    text[0] = '\0';
    if (body && len > 0) {
        j = cJSON_ParseWithLength(body, len);
        if (cJSON_IsObject(j) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "kind")) &&
            strcmp(cJSON_GetObjectItemCaseSensitive(j, "kind")->valuestring, "Status") == 0) {
            const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
            const cJSON *rsn = cJSON_GetObjectItemCaseSensitive(j, "reason");
            const cJSON *det = cJSON_GetObjectItemCaseSensitive(j, "details");
            const cJSON *ra = cJSON_GetObjectItemCaseSensitive(det, "retryAfterSeconds");

            if (cJSON_IsString(msg))
                one_line(msg->valuestring, strlen(msg->valuestring), text, sizeof(text));
            else if (cJSON_IsString(rsn))
                one_line(rsn->valuestring, strlen(rsn->valuestring), text, sizeof(text));
            if (cJSON_IsString(rsn) && reason && reasonlen)
                snprintf(reason, reasonlen, "%s", rsn->valuestring);
            if (cJSON_IsNumber(ra) && ra->valuedouble > 0)
                retry = ra->valuedouble * KX_NSEC_PER_SEC > (double)K8S_MAX_RETRY_AFTER
                            ? K8S_MAX_RETRY_AFTER
                            : (int64_t)ra->valuedouble * KX_NSEC_PER_SEC;
        } else {
            one_line(body, len < 300 ? len : 300, text, sizeof(text));
        }
        cJSON_Delete(j);
    }
    if (out && outlen) {
        if (text[0])
            snprintf(out, outlen, "%ld%s%s: %s", status, phrase[0] ? " " : "", phrase, text);
        else
            snprintf(out, outlen, "%ld%s%s", status, phrase[0] ? " " : "", phrase);
    }
    return retry;
}

/* ------------------------------------------------------------------------ */
/* Client                                                                    */
/* ------------------------------------------------------------------------ */

struct kx_k8s {
    struct kx_k8s_config cfg;     /* owned; cfg.token changes on reload (client thread) */
    CURL *curl;                   /* owned, reused for every transfer */
    CURLM *multi;                 /* owned: connection cache; kx_k8s_cancel wakes its poll */
    atomic_bool cancelled;        /* any thread */
    int64_t timeout;              /* ns */
    int64_t connect_timeout;      /* ns */
    int64_t watch_timeout;        /* ns */
    int64_t backoff_min;          /* ns */
    int64_t backoff_max;          /* ns */
    int64_t token_reload;         /* ns */
    int64_t token_read_at;        /* monotonic ns of the last token file read */
    unsigned rand_state;          /* backoff jitter */
    char errbuf[CURL_ERROR_SIZE]; /* curl's message for the last transfer */
};

struct kx_k8s *kx_k8s_new_config(struct kx_k8s_config *cfg, const struct kx_k8s_opts *o, char *err,
                                 size_t errlen)
{
    struct kx_k8s *c;

    if (!cfg || !cfg->server) {
        kx_k8s_config_release(cfg);
        errf(err, errlen, "kubernetes: no server configured");
        errno = EINVAL;
        return NULL;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        kx_k8s_config_release(cfg);
        errf(err, errlen, "kubernetes: out of memory");
        errno = ENOMEM;
        return NULL;
    }
    c->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    c->timeout = o && o->timeout > 0 ? o->timeout : K8S_DEFAULT_TIMEOUT;
    c->connect_timeout = o && o->connect_timeout > 0 ? o->connect_timeout : K8S_DEFAULT_CONNECT;
    c->watch_timeout = o && o->watch_timeout > 0 ? o->watch_timeout : K8S_DEFAULT_WATCH;
    c->backoff_min = o && o->backoff_min > 0 ? o->backoff_min : K8S_DEFAULT_BACKOFF_MIN;
    c->backoff_max = o && o->backoff_max > 0 ? o->backoff_max : K8S_DEFAULT_BACKOFF_MAX;
    if (c->backoff_max < c->backoff_min)
        c->backoff_max = c->backoff_min;
    c->token_reload = o && o->token_reload > 0 ? o->token_reload : K8S_DEFAULT_TOKEN_RELOAD;
    c->token_read_at = kx_monotonic_ns();
    c->rand_state = (unsigned)kx_now_ns() ^ (unsigned)(uintptr_t)c;
    atomic_init(&c->cancelled, false);
    c->curl = curl_easy_init();
    c->multi = curl_multi_init();
    if (!c->curl || !c->multi) {
        kx_k8s_free(c);
        errf(err, errlen, "kubernetes: cannot create a curl handle");
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

struct kx_k8s *kx_k8s_new(const struct kx_k8s_opts *o, char *err, size_t errlen)
{
    struct kx_k8s_config cfg;
    int e = kx_k8s_config_load(o, &cfg, err, errlen);

    if (e < 0) {
        errno = -e;
        return NULL;
    }
    return kx_k8s_new_config(&cfg, o, err, errlen);
}

void kx_k8s_free(struct kx_k8s *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    kx_k8s_config_release(&c->cfg);
    free(c);
}

const char *kx_k8s_server(const struct kx_k8s *c)
{
    return c ? c->cfg.server : NULL;
}

const char *kx_k8s_namespace(const struct kx_k8s *c)
{
    return c ? c->cfg.ns : NULL;
}

const char *kx_k8s_source(const struct kx_k8s *c)
{
    return c ? c->cfg.source : NULL;
}

void kx_k8s_cancel(struct kx_k8s *c)
{
    if (!c)
        return;
    atomic_store(&c->cancelled, true);
    curl_multi_wakeup(c->multi);
}

bool kx_k8s_cancelled(const struct kx_k8s *c)
{
    return c && atomic_load(&c->cancelled);
}

void kx_k8s_result_release(struct kx_k8s_result *res)
{
    if (!res)
        return;
    free(res->body);
    cJSON_Delete(res->json);
    res->body = NULL;
    res->json = NULL;
    res->len = 0;
}

/* Re-reads the token file (rotation: kubelet refreshes projected tokens).
 * Returns true when the token changed. A failed read keeps the old token. */
static bool token_reload(struct kx_k8s *c)
{
    char *t;

    if (!c->cfg.token_file)
        return false;
    c->token_read_at = kx_monotonic_ns();
    t = read_trimmed(c->cfg.token_file, K8S_TOKEN_MAX);
    if (!t || !token_ok(t)) {
        kx_debug("kubernetes: cannot re-read token %s; keeping the current one", c->cfg.token_file);
        free(t);
        return false;
    }
    if (c->cfg.token && strcmp(t, c->cfg.token) == 0) {
        free_secret(t, 0);
        return false;
    }
    free_secret(c->cfg.token, 0);
    c->cfg.token = t;
    kx_debug("kubernetes: token reloaded from %s", c->cfg.token_file);
    return true;
}

/* Interruptible sleep: returns early when cancelled. */
static void k8s_sleep(struct kx_k8s *c, int64_t ns)
{
    int64_t end = kx_monotonic_ns() + ns;

    while (!atomic_load(&c->cancelled)) {
        int64_t left = end - kx_monotonic_ns();

        if (left <= 0)
            break;
        left = left / KX_NSEC_PER_MSEC + 1;
        curl_multi_poll(c->multi, NULL, 0, (int)(left > 1000 ? 1000 : left), NULL);
    }
}

/* ------------------------------------------------------------------------ */
/* Transfers                                                                 */
/* ------------------------------------------------------------------------ */

struct k8s_watch;
static size_t watch_feed(struct k8s_watch *w, const char *p, size_t n);
static void watch_on_open(struct k8s_watch *w);

/* Receive state of one transfer. */
struct k8s_rx {
    struct kx_k8s *c;
    struct kx_k8s_result *res;
    struct kx_buf body;      /* the body (or, for a watch, an error body) */
    struct k8s_watch *watch; /* non-NULL: a watch; a 200 body is streamed to it */
    bool streaming;          /* this response is a watch event stream */
    bool too_big;            /* the body passed its bound: transfer aborted */
    bool aborted;            /* a callback aborted the transfer (watch error / cancel) */
};

static size_t k8s_on_body(char *p, size_t size, size_t n, void *ud)
{
    struct k8s_rx *rx = ud;
    size_t total = size * n;

    if (atomic_load(&rx->c->cancelled)) {
        rx->aborted = true;
        return 0;
    }
    if (rx->streaming) {
        if (watch_feed(rx->watch, p, total) != total) {
            rx->aborted = true;
            return 0;
        }
        return total;
    }
    if (kx_buf_append(&rx->body, p, total) < 0) {
        rx->too_big = true;
        return 0;
    }
    return total;
}

static size_t k8s_on_header(char *p, size_t size, size_t n, void *ud)
{
    struct k8s_rx *rx = ud;
    size_t total = size * n;
    static const char name[] = "retry-after:";

    if (total >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        rx->res->retry_after = 0;
    } else if (total > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        rx->res->retry_after = kx_httpc_retry_after(
            p + sizeof(name) - 1, total - (sizeof(name) - 1), K8S_MAX_RETRY_AFTER);
    } else if (rx->watch && (total == 2 || total == 1) && (p[0] == '\r' || p[0] == '\n')) {
        long status = 0;

        /* End of the headers: a 200 on a watch is an event stream. */
        curl_easy_getinfo(rx->c->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200 && !rx->streaming) {
            rx->streaming = true;
            watch_on_open(rx->watch);
        }
    }
    return total;
}

/* Runs the transfer set up on c->curl to its end through the multi handle.
 * Returns 0 with *out set, or -ECANCELED. */
static int k8s_perform(struct kx_k8s *c, CURLcode *out)
{
    int running = 0, rc = 0;
    bool done = false;

    *out = CURLE_OK;
    if (atomic_load(&c->cancelled))
        return -ECANCELED;
    if (curl_multi_add_handle(c->multi, c->curl) != CURLM_OK) {
        *out = CURLE_OUT_OF_MEMORY;
        return 0;
    }
    for (;;) {
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(c->multi, &left))) {
            if (m->msg == CURLMSG_DONE && m->easy_handle == c->curl) {
                *out = m->data.result;
                done = true;
            }
        }
        if (done)
            break;
        if (mc != CURLM_OK) {
            *out = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_RECV_ERROR;
            break;
        }
        if (atomic_load(&c->cancelled)) {
            rc = -ECANCELED;
            break;
        }
        if (running == 0)
            break;
        curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
    }
    curl_multi_remove_handle(c->multi, c->curl);
    if (atomic_load(&c->cancelled))
        rc = -ECANCELED;
    return rc;
}

/* Transport failures that are configuration errors (-EACCES: our TLS
 * material or the server's certificate) or bad requests (-EINVAL). */
static int curl_class(CURLcode rc)
{
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return -EACCES;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
        return -EINVAL;
    default:
        return -EAGAIN;
    }
}

/* "/api/v1/pods" out of "/api/v1/pods?watch=1&...", bounded. */
static void path_shown(const char *path, char *out, size_t len)
{
    size_t n = strcspn(path, "?#");

    if (n > K8S_PATH_SHOWN)
        snprintf(out, len, "%.*s...", K8S_PATH_SHOWN, path);
    else
        snprintf(out, len, "%.*s", (int)n, path);
}

static int add_line(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);

    if (!n)
        return -ENOMEM;
    *l = n;
    return 0;
}

/*
 * One transfer. Returns 0 when a response arrived (any status: res->status,
 * res->body), -ECANCELED, -E2BIG (body over its bound), or a transport
 * failure classified by curl_class() with err set.
 */
static int k8s_transfer(struct kx_k8s *c, const char *method, const char *path,
                        const char *content_type, const char *body, struct k8s_watch *watch,
                        struct kx_k8s_result *res, char *err, size_t errlen)
{
    struct k8s_rx rx = {.c = c, .res = res, .watch = watch};
    struct curl_slist *hdrs = NULL;
    struct curl_blob ca, cert, key;
    char *url = NULL, *auth = NULL, shown[K8S_PATH_SHOWN + 8];
    CURLcode cc;
    int e;

    path_shown(path, shown, sizeof(shown));
    if (path[0] != '/' || strpbrk(path, " \t\r\n")) {
        errf(err, errlen, "%s %s: the path must start with '/' and contain no spaces", method,
             shown);
        return -EINVAL;
    }
    if (strpbrk(method, " \t\r\n") || (content_type && strpbrk(content_type, "\r\n"))) {
        errf(err, errlen, "%s %s: bad method or content type", method, shown);
        return -EINVAL;
    }
    if (c->cfg.token_file && kx_monotonic_ns() - c->token_read_at >= c->token_reload)
        token_reload(c);
    kx_buf_init(&rx.body, watch ? K8S_ERROR_BODY_MAX : KX_K8S_MAX_BODY);
    if (asprintf(&url, "%s%s", c->cfg.server, path) < 0) {
        url = NULL;
        e = -ENOMEM;
        goto out;
    }
    e = add_line(&hdrs, "Accept: application/json");
    if (!e && c->cfg.token) {
        if (asprintf(&auth, "Authorization: Bearer %s", c->cfg.token) < 0) {
            auth = NULL;
            e = -ENOMEM;
        } else {
            e = add_line(&hdrs, auth);
        }
    }
    if (!e && body) {
        char ct[160];

        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : KX_K8S_JSON);
        e = add_line(&hdrs, ct);
    }
    if (!e)
        e = add_line(&hdrs, "Expect:");
    if (e)
        goto out;

    curl_easy_reset(c->curl);
    c->errbuf[0] = '\0';
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "klaxon/" KX_VERSION);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, k8s_on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &rx);
    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, k8s_on_header);
    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &rx);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(c->connect_timeout / KX_NSEC_PER_MSEC) + 1);
    curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    if (watch) {
        /* The server ends the watch after timeoutSeconds; the guard below
         * catches a peer that silently vanished. */
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS,
                         (long)((c->watch_timeout + 60 * KX_NSEC_PER_SEC) / KX_NSEC_PER_MSEC));
    } else {
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)(c->timeout / KX_NSEC_PER_MSEC) + 1);
        curl_easy_setopt(c->curl, CURLOPT_ACCEPT_ENCODING, "");
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    } else if (body) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    }
    if (c->cfg.insecure) {
        curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (c->cfg.ca_data || c->cfg.ca_file) {
        /* Only the cluster CA, not the system trust store. */
        curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
        if (c->cfg.ca_data) {
            ca = (struct curl_blob){c->cfg.ca_data, c->cfg.ca_len, CURL_BLOB_NOCOPY};
            curl_easy_setopt(c->curl, CURLOPT_CAINFO, NULL);
            curl_easy_setopt(c->curl, CURLOPT_CAINFO_BLOB, &ca);
        } else {
            curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->cfg.ca_file);
        }
    }
    if (c->cfg.cert_data) {
        cert = (struct curl_blob){c->cfg.cert_data, c->cfg.cert_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(c->curl, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(c->curl, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (c->cfg.cert_file) {
        curl_easy_setopt(c->curl, CURLOPT_SSLCERT, c->cfg.cert_file);
    }
    if (c->cfg.key_data) {
        key = (struct curl_blob){c->cfg.key_data, c->cfg.key_len, CURL_BLOB_NOCOPY};
        curl_easy_setopt(c->curl, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(c->curl, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (c->cfg.key_file) {
        curl_easy_setopt(c->curl, CURLOPT_SSLKEY, c->cfg.key_file);
    }

    e = k8s_perform(c, &cc);
    /* Nothing of this call may stay reachable from the handle. */
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
    if (e == -ECANCELED) {
        errf(err, errlen, "%s %s: cancelled", method, shown);
        goto out;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &res->status);
    if (rx.too_big) {
        errf(err, errlen, "%s %s: the response is larger than %zu bytes", method, shown,
             rx.body.max);
        e = -E2BIG;
        goto out;
    }
    if (cc != CURLE_OK && !(rx.aborted && rx.streaming)) {
        const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
        long oserr = 0;

        e = curl_class(cc);
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR)
            curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
        if (oserr != 0 && strstr(why, strerror((int)oserr)) == NULL)
            errf(err, errlen, "%s %s%s: %s (%s)", method, c->cfg.server, shown,
                 strerror((int)oserr), why);
        else
            errf(err, errlen, "%s %s%s: %s%s", method, c->cfg.server, shown, why,
                 e == -EACCES ? " (TLS: check the cluster CA and client certificate in the "
                                "configuration)"
                              : "");
        if (e == -EACCES && err && errlen && c->cfg.source) {
            size_t n = strlen(err);

            snprintf(err + n, errlen - n, "; from %s", c->cfg.source);
        }
        goto out;
    }
    if (rx.body.len > 0) {
        res->body = rx.body.data;
        res->len = rx.body.len;
        rx.body.data = NULL;
        if (res->body[strspn(res->body, " \t\r\n")] == '{' ||
            res->body[strspn(res->body, " \t\r\n")] == '[')
            res->json = cJSON_ParseWithLength(res->body, res->len);
    }
    e = 0;
out:
    kx_buf_free(&rx.body);
    curl_slist_free_all(hdrs);
    if (auth)
        free_secret(auth, 0);
    free(url);
    return e;
}

/* The error for a non-2xx response: classification + message. */
static int k8s_http_error(struct kx_k8s *c, const char *method, const char *path,
                          struct kx_k8s_result *res, char *err, size_t errlen)
{
    int rc = kx_k8s_classify(res->status);
    char sm[1200], shown[K8S_PATH_SHOWN + 8], hint[400];
    int64_t ra;

    ra = kx_k8s_status_message(res->status, res->body, res->len, sm, sizeof(sm), res->reason,
                               sizeof(res->reason));
    if (res->retry_after == 0)
        res->retry_after = ra;
    path_shown(path, shown, sizeof(shown));
    hint[0] = '\0';
    if (res->status == 401)
        snprintf(hint, sizeof(hint),
                 " (configuration: the API server rejected the credentials "
                 "from %s; check the token or client certificate)",
                 c->cfg.source);
    else if (res->status == 403)
        snprintf(hint, sizeof(hint),
                 " (RBAC: the credentials from %s lack this permission; "
                 "grant it in a Role or ClusterRole)",
                 c->cfg.source);
    else if (rc == -EAGAIN && res->retry_after > 0)
        snprintf(hint, sizeof(hint), " (retry after %lld s)",
                 (long long)((res->retry_after + KX_NSEC_PER_SEC - 1) / KX_NSEC_PER_SEC));
    errf(err, errlen, "%s %s: %s%s", method, shown, sm, hint);
    return rc;
}

int kx_k8s_request(struct kx_k8s *c, const char *method, const char *path, const char *content_type,
                   const char *body, struct kx_k8s_result *res, char *err, size_t errlen)
{
    struct kx_k8s_result dummy;
    int e;

    if (!res)
        res = &dummy;
    memset(res, 0, sizeof(*res));
    if (err && errlen)
        err[0] = '\0';
    if (!c || !method || !method[0] || !path) {
        errf(err, errlen, "kubernetes: request without client, method or path");
        return -EINVAL;
    }
    e = k8s_transfer(c, method, path, content_type, body, NULL, res, err, errlen);
    if (e == 0 && res->status == 401 && token_reload(c)) {
        /* The token rotated under us: one more try with the new one. */
        kx_k8s_result_release(res);
        memset(res, 0, sizeof(*res));
        e = k8s_transfer(c, method, path, content_type, body, NULL, res, err, errlen);
    }
    if (e == 0 && (res->status < 200 || res->status > 299))
        e = k8s_http_error(c, method, path, res, err, errlen);
    if (res == &dummy)
        kx_k8s_result_release(res);
    return e;
}

/* ------------------------------------------------------------------------ */
/* List + watch                                                              */
/* ------------------------------------------------------------------------ */

const char *kx_k8s_event_name(enum kx_k8s_event_type t)
{
    static const char *const names[] = {"LIST_BEGIN", "ADDED",  "MODIFIED", "DELETED",
                                        "BOOKMARK",   "SYNCED", "WATCHING", "FAILED"};

    return (unsigned)t < KX_ARRAY_SIZE(names) ? names[t] : "?";
}

enum watch_end {
    WATCH_OK,   /* the stream ended or broke: resume from rv */
    WATCH_GONE, /* 410: re-list */
    WATCH_BAD,  /* oversize / malformed line, or an ERROR event: re-list after backoff */
};

struct k8s_watch {
    struct kx_k8s *c;
    const struct kx_k8s_watch_opts *o;
    struct kx_buf line;  /* the partial event line, bounded by o->max_event */
    char rv[K8S_RV_MAX]; /* the collection's latest resourceVersion */
    enum watch_end end;  /* why the stream was given up */
    char msg[512];       /* what was wrong when end == WATCH_BAD */
    size_t events;       /* events in the current stream */
};

static void emit(struct k8s_watch *w, enum kx_k8s_event_type type, const cJSON *obj)
{
    struct kx_k8s_event ev = {.type = type, .object = obj, .resource_version = w->rv};

    w->o->cb(w->o->ctx, &ev);
}

static void watch_on_open(struct k8s_watch *w)
{
    kx_buf_reset(&w->line);
    emit(w, KX_K8S_WATCHING, NULL);
}

/* Copies object.metadata.resourceVersion into w->rv; false when it is too long. */
static bool take_rv(struct k8s_watch *w, const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");

    if (!cJSON_IsString(rv) || rv->valuestring[0] == '\0')
        return true;
    if (strlen(rv->valuestring) >= sizeof(w->rv))
        return false;
    snprintf(w->rv, sizeof(w->rv), "%s", rv->valuestring);
    return true;
}

/* One event line; false ends the stream (w->end says why). */
static bool watch_line(struct k8s_watch *w, const char *p, size_t n)
{
    static const struct {
        const char *name;
        enum kx_k8s_event_type type;
    } types[] = {{"ADDED", KX_K8S_ADDED},
                 {"MODIFIED", KX_K8S_MODIFIED},
                 {"DELETED", KX_K8S_DELETED},
                 {"BOOKMARK", KX_K8S_BOOKMARK}};
    const cJSON *type, *obj;
    cJSON *j;

    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    if (n == 0)
        return true;
    j = cJSON_ParseWithLength(p, n);
    type = cJSON_GetObjectItemCaseSensitive(j, "type");
    obj = cJSON_GetObjectItemCaseSensitive(j, "object");
    if (!cJSON_IsString(type) || !cJSON_IsObject(obj)) {
        w->end = WATCH_BAD;
        snprintf(w->msg, sizeof(w->msg), "malformed watch event (%zu bytes)", n);
        cJSON_Delete(j);
        return false;
    }
    if (strcmp(type->valuestring, "ERROR") == 0) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
        char *s = cJSON_PrintUnformatted(obj);
        char sm[400];

        kx_k8s_status_message(cJSON_IsNumber(code) ? (long)code->valuedouble : 0, s,
                              s ? strlen(s) : 0, sm, sizeof(sm), NULL, 0);
        free(s);
        if (cJSON_IsNumber(code) && (long)code->valuedouble == 410) {
            w->end = WATCH_GONE;
            snprintf(w->msg, sizeof(w->msg), "%s", sm);
        } else {
            w->end = WATCH_BAD;
            snprintf(w->msg, sizeof(w->msg), "watch ERROR event: %s", sm);
        }
        cJSON_Delete(j);
        return false;
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(types); i++) {
        if (strcmp(type->valuestring, types[i].name) != 0)
            continue;
        if (!take_rv(w, obj)) {
            w->end = WATCH_BAD;
            snprintf(w->msg, sizeof(w->msg), "watch event with a resourceVersion over %d bytes",
                     K8S_RV_MAX - 1);
            cJSON_Delete(j);
            return false;
        }
        w->events++;
        emit(w, types[i].type, obj);
        break;
    }
    /* Unknown types are skipped: newer servers may add some. */
    cJSON_Delete(j);
    return true;
}

/* The write callback's side of a 200 watch: split into lines. Returns n,
 * or less to abort the transfer. */
static size_t watch_feed(struct k8s_watch *w, const char *p, size_t n)
{
    size_t total = n;

    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;

        if (kx_buf_append(&w->line, p, take) < 0) {
            w->end = WATCH_BAD;
            snprintf(w->msg, sizeof(w->msg), "watch event larger than %zu bytes", w->line.max);
            return 0;
        }
        if (!nl)
            break;
        if (w->line.len > 0 && !watch_line(w, w->line.data, w->line.len))
            return 0;
        kx_buf_reset(&w->line);
        if (atomic_load(&w->c->cancelled))
            return 0;
        p = nl + 1;
        n -= take + 1;
    }
    return total;
}

/* Appends "&k=escaped(v)" (or "?..." first) to a path buffer; -ENAMETOOLONG. */
static int url_param(char *buf, size_t len, const char *k, const char *v)
{
    char esc[K8S_URL_MAX];
    size_t n = strlen(buf);
    int r;

    if (kx_k8s_query_escape(v, esc, sizeof(esc)) < 0)
        return -ENAMETOOLONG;
    r = snprintf(buf + n, len - n, "%c%s=%s", strchr(buf, '?') ? '&' : '?', k, esc);
    return r < 0 || (size_t)r >= len - n ? -ENAMETOOLONG : 0;
}

static int watch_base(const struct k8s_watch *w, char *buf, size_t len)
{
    int r = snprintf(buf, len, "%s%s%s", w->o->path, w->o->query && w->o->query[0] ? "?" : "",
                     w->o->query ? w->o->query : "");

    return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

/* LIST, paged; emits LIST_BEGIN, ADDED per item, SYNCED. */
static int watch_list(struct k8s_watch *w, char *msg, size_t msglen, int64_t *retry_after)
{
    char path[K8S_URL_MAX], page[32], *cont = NULL, rv[K8S_RV_MAX] = "";
    size_t count = 0;
    int restarts = 0, e = 0;

    emit(w, KX_K8S_LIST_BEGIN, NULL);
    for (;;) {
        struct kx_k8s_result res;
        const cJSON *items, *meta, *item, *jrv, *jcont;

        snprintf(page, sizeof(page), "%zu", w->o->page_size ? w->o->page_size : K8S_PAGE_DEFAULT);
        if ((e = watch_base(w, path, sizeof(path))) < 0 ||
            (e = url_param(path, sizeof(path), "limit", page)) < 0 ||
            (cont && (e = url_param(path, sizeof(path), "continue", cont)) < 0)) {
            errf(msg, msglen, "LIST %s: the URL is too long", w->o->path);
            break;
        }
        e = kx_k8s_request(w->c, "GET", path, NULL, NULL, &res, msg, msglen);
        if (e == -ESTALE && cont && restarts++ < 3) {
            /* The continue token expired mid-list: start over. */
            kx_k8s_result_release(&res);
            free(cont);
            cont = NULL;
            count = 0;
            emit(w, KX_K8S_LIST_BEGIN, NULL);
            continue;
        }
        if (e < 0) {
            *retry_after = res.retry_after;
            kx_k8s_result_release(&res);
            break;
        }
        meta = cJSON_GetObjectItemCaseSensitive(res.json, "metadata");
        items = cJSON_GetObjectItemCaseSensitive(res.json, "items");
        jrv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
        jcont = cJSON_GetObjectItemCaseSensitive(meta, "continue");
        if (!cJSON_IsArray(items) && !cJSON_IsNull(items) && items != NULL) {
            errf(msg, msglen, "LIST %s: the response is not a list (no items array)", w->o->path);
            e = -EBADMSG;
        } else if (!cont && (!cJSON_IsString(jrv) || jrv->valuestring[0] == '\0' ||
                             strlen(jrv->valuestring) >= sizeof(rv))) {
            errf(msg, msglen, "LIST %s: the response has no usable metadata.resourceVersion",
                 w->o->path);
            e = -EBADMSG;
        }
        if (e < 0) {
            kx_k8s_result_release(&res);
            break;
        }
        if (!cont) {
            snprintf(rv, sizeof(rv), "%s", jrv->valuestring);
            snprintf(w->rv, sizeof(w->rv), "%s", rv);
        }
        cJSON_ArrayForEach(item, items)
        {
            if (atomic_load(&w->c->cancelled))
                break;
            if (!cJSON_IsObject(item))
                continue;
            emit(w, KX_K8S_ADDED, item);
            count++;
        }
        free(cont);
        cont = cJSON_IsString(jcont) && jcont->valuestring[0] ? strdup(jcont->valuestring) : NULL;
        kx_k8s_result_release(&res);
        if (atomic_load(&w->c->cancelled)) {
            e = -ECANCELED;
            break;
        }
        if (!cont) {
            struct kx_k8s_event ev = {
                .type = KX_K8S_SYNCED, .resource_version = rv, .count = count};

            snprintf(w->rv, sizeof(w->rv), "%s", rv);
            w->o->cb(w->o->ctx, &ev);
            e = 0;
            break;
        }
    }
    free(cont);
    return e;
}

/* One WATCH stream from w->rv. 0 when it ended (cleanly or broken: see
 * *broken), -ESTALE to re-list, -EBADMSG (re-list after backoff), -ECANCELED,
 * or the request's classification. */
static int watch_stream(struct k8s_watch *w, char *msg, size_t msglen, int64_t *retry_after,
                        bool *broken)
{
    char path[K8S_URL_MAX], secs[32];
    struct kx_k8s_result res;
    int e;

    *broken = false;
    w->events = 0;
    w->end = WATCH_OK;
    w->msg[0] = '\0';
    kx_buf_reset(&w->line);
    snprintf(secs, sizeof(secs), "%lld", (long long)(w->c->watch_timeout / KX_NSEC_PER_SEC));
    if (watch_base(w, path, sizeof(path)) < 0 || url_param(path, sizeof(path), "watch", "1") < 0 ||
        url_param(path, sizeof(path), "resourceVersion", w->rv) < 0 ||
        url_param(path, sizeof(path), "allowWatchBookmarks", "true") < 0 ||
        url_param(path, sizeof(path), "timeoutSeconds", secs) < 0) {
        errf(msg, msglen, "WATCH %s: the URL is too long", w->o->path);
        return -EINVAL;
    }
    memset(&res, 0, sizeof(res));
    e = k8s_transfer(w->c, "GET", path, NULL, NULL, w, &res, msg, msglen);
    if (e == 0 && res.status == 401 && token_reload(w->c)) {
        kx_k8s_result_release(&res);
        memset(&res, 0, sizeof(res));
        e = k8s_transfer(w->c, "GET", path, NULL, NULL, w, &res, msg, msglen);
    }
    if (e == -ECANCELED || atomic_load(&w->c->cancelled)) {
        e = -ECANCELED;
    } else if (w->end == WATCH_GONE) {
        errf(msg, msglen, "WATCH %s: %s", w->o->path, w->msg);
        e = -ESTALE;
    } else if (w->end == WATCH_BAD) {
        errf(msg, msglen, "WATCH %s: %s", w->o->path, w->msg);
        e = -EBADMSG;
    } else if (e < 0) {
        /* Transport failure; a stream that had been open just broke. */
        *broken = res.status == 200;
        *retry_after = res.retry_after;
    } else if (res.status != 200) {
        e = k8s_http_error(w->c, "WATCH", path, &res, msg, msglen);
        *retry_after = res.retry_after;
    }
    kx_k8s_result_release(&res);
    return e;
}

/* The next backoff delay: [3/4, 1] of *backoff (jitter), at least the
 * server's Retry-After (capped); *backoff doubles up to the maximum. */
static int64_t next_delay(struct kx_k8s *c, int64_t *backoff, int64_t retry_after)
{
    int64_t b = *backoff, d = b - (int64_t)((double)rand_r(&c->rand_state) / RAND_MAX * (b / 4));

    if (retry_after > d)
        d = retry_after > K8S_MAX_RETRY_AFTER ? K8S_MAX_RETRY_AFTER : retry_after;
    *backoff = b > c->backoff_max / 2 ? c->backoff_max : b * 2;
    return d;
}

static void emit_failed(struct k8s_watch *w, int error, const char *msg, int64_t delay)
{
    struct kx_k8s_event ev = {.type = KX_K8S_FAILED,
                              .resource_version = w->rv,
                              .error = error,
                              .message = msg,
                              .retry_in = delay};

    w->o->cb(w->o->ctx, &ev);
}

int kx_k8s_watch(struct kx_k8s *c, const struct kx_k8s_watch_opts *o)
{
    struct k8s_watch w = {.c = c, .o = o};
    int64_t backoff;
    bool need_list = true;
    int gone_streak = 0;
    char msg[1024];

    if (!c || !o || !o->path || o->path[0] != '/' || !o->cb)
        return -EINVAL;
    backoff = c->backoff_min;
    kx_buf_init(&w.line, o->max_event ? o->max_event : KX_K8S_MAX_EVENT);
    while (!atomic_load(&c->cancelled)) {
        int64_t retry_after = 0, delay, t0;
        bool broken = false;
        int e;

        if (need_list) {
            e = watch_list(&w, msg, sizeof(msg), &retry_after);
            if (e == -ECANCELED || atomic_load(&c->cancelled))
                break;
            if (e < 0) {
                delay = next_delay(c, &backoff, retry_after);
                emit_failed(&w, e, msg, delay);
                k8s_sleep(c, delay);
                continue;
            }
            need_list = false;
            backoff = c->backoff_min;
        }
        t0 = kx_monotonic_ns();
        e = watch_stream(&w, msg, sizeof(msg), &retry_after, &broken);
        if (e == -ECANCELED || atomic_load(&c->cancelled))
            break;
        if (w.events > 0 || kx_monotonic_ns() - t0 > 10 * KX_NSEC_PER_SEC) {
            /* The stream worked for a while: failures start over small. */
            backoff = c->backoff_min;
            gone_streak = 0;
        }
        if (e == 0) {
            /* Ended by the server (timeoutSeconds): resume at once, unless it
             * ends right away every time. */
            if (w.events == 0 && kx_monotonic_ns() - t0 < KX_NSEC_PER_SEC)
                k8s_sleep(c, next_delay(c, &backoff, 0));
            continue;
        }
        if (e == -ESTALE) {
            kx_debug("kubernetes: %s; listing again", msg);
            need_list = true;
            if (gone_streak++ > 0)
                k8s_sleep(c, next_delay(c, &backoff, 0));
            continue;
        }
        if (e == -EBADMSG || e == -EINVAL || e == -E2BIG)
            need_list = true;
        if (broken) {
            size_t n = strlen(msg);

            snprintf(msg + n, sizeof(msg) - n, " (watch stream broke after %zu events)", w.events);
        }
        delay = next_delay(c, &backoff, retry_after);
        emit_failed(&w, e, msg, delay);
        k8s_sleep(c, delay);
    }
    kx_buf_free(&w.line);
    return 0;
}
