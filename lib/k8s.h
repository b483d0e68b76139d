/* SPDX-License-Identifier: Apache-2.0 */
/*
 * k8s.h - a small Kubernetes API client (libcurl + cJSON): configuration from
 * the pod's service account or a kubeconfig, requests with Kubernetes-aware
 * error classification, and a list+watch loop. Generic on purpose: the
 * sensor's pod cache watches pods with it, responders delete/evict pods,
 * patch nodes, create network policies and events with the same calls.
 *
 * Outcomes of a request (kx_k8s_request):
 *
 *   2xx                               0
 *   401, 403, TLS verification,       -EACCES   configuration or RBAC error: retrying
 *     bad CA/client cert material                the same request will not help
 *   404                               -ENOENT
 *   409                               -EEXIST   conflict (exists / stale resourceVersion)
 *   410                               -ESTALE   resource version or continue token expired
 *   422, other 4xx, bad path          -EINVAL
 *   429, 5xx, connection failure,     -EAGAIN   retry (res->retry_after when the server
 *     timeout                                    said when)
 *   response over KX_K8S_MAX_BODY     -E2BIG
 *   kx_k8s_cancel() was called        -ECANCELED
 *
 * Error texts look like
 *   "DELETE /api/v1/namespaces/shop/pods/web-1: 403 Forbidden: pods \"web-1\" is
 *    forbidden: User \"system:serviceaccount:klaxon:sensor\" cannot delete resource
 *    \"pods\" in API group \"\" in the namespace \"shop\" (RBAC: the credentials
 *    from in-cluster service account (...) lack this permission; grant it in a Role
 *    or ClusterRole)"
 * and never contain tokens or the query string.
 *
 * Threads: a kx_k8s is used by one thread at a time (it owns one curl handle
 * and its connection). kx_k8s_cancel() is the exception: any thread may call
 * it, and it makes the running request or watch return within milliseconds.
 */
#ifndef KX_K8S_H
#define KX_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct cJSON;

#define KX_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Content types for request bodies. The API server refuses plain JSON on
 * PATCH (415); pick one of the patch types there. */
#define KX_K8S_JSON "application/json"
#define KX_K8S_JSON_PATCH "application/json-patch+json"
#define KX_K8S_MERGE_PATCH "application/merge-patch+json"
#define KX_K8S_STRATEGIC_MERGE_PATCH "application/strategic-merge-patch+json"

#define KX_K8S_MAX_BODY (64 * 1024 * 1024) /* response bytes kept; more is an error */
#define KX_K8S_MAX_EVENT (4 * 1024 * 1024) /* default bound on one watch event line */

enum kx_k8s_mode {
    KX_K8S_MODE_AUTO,       /* in-cluster when KUBERNETES_SERVICE_HOST is set, else kubeconfig */
    KX_K8S_MODE_INCLUSTER,  /* service account token + KUBERNETES_SERVICE_HOST/PORT */
    KX_K8S_MODE_KUBECONFIG, /* kubeconfig file */
    KX_K8S_MODE_OFF,        /* no Kubernetes API at all */
};

/* "auto" | "incluster" (or "in-cluster") | "kubeconfig" | "off"; 0 or -EINVAL. */
int kx_k8s_mode_parse(const char *s, enum kx_k8s_mode *out);
const char *kx_k8s_mode_name(enum kx_k8s_mode m);

/* How to reach the API. All strings borrowed (copied by kx_k8s_new); NULL or
 * "" = the default named. Zero-initialized = auto mode, all defaults. */
struct kx_k8s_opts {
    enum kx_k8s_mode mode;
    const char *kubeconfig;  /* path; default $KUBECONFIG (first of a list), else ~/.kube/config */
    const char *context;     /* kubeconfig context; default its current-context */
    const char *sa_dir;      /* service account dir (token, ca.crt, namespace); KX_K8S_SA_DIR */
    const char *server;      /* API URL replacing the configured one ("https://10.0.0.1:6443") */
    int64_t timeout;         /* ns per request; 0 = 10 s */
    int64_t connect_timeout; /* ns per TCP+TLS connect; 0 = 5 s */
    int64_t watch_timeout;   /* ns a watch lasts before it is renewed (timeoutSeconds); 0 = 5 min */
    int64_t backoff_min;     /* ns, first retry delay of a failing watch; 0 = 1 s */
    int64_t backoff_max;     /* ns, retry delay cap (doubling); 0 = 30 s */
    int64_t token_reload;    /* ns between re-reads of a token file; 0 = 60 s (and on a 401) */
};

/*
 * Settings for a YAML section ("kubernetes:" in sensor.yaml), so wiring is
 * one kx_config_apply() + kx_k8s_settings_opts():
 *
 *   kubernetes: {mode: auto, kubeconfig: "", context: "", serviceaccount_dir: "",
 *                server: "", timeout: 10s, connect_timeout: 5s}
 */
struct kx_k8s_settings {
    char *mode;               /* owned: "auto" | "incluster" | "kubeconfig" | "off" */
    char *kubeconfig;         /* owned */
    char *context;            /* owned */
    char *serviceaccount_dir; /* owned */
    char *server;             /* owned */
    int64_t timeout;          /* ns */
    int64_t connect_timeout;  /* ns */
};
extern const struct kx_opt kx_k8s_settings_table[]; /* for kx_config_apply() */

/* The option rows of struct kx_k8s_settings embedded in another settings
 * struct as `field` (responders carry their own connection), for an
 * option table of `type`: {KX_K8S_OPTS(struct my_settings, k8s), ..., {0}}. */
#define KX_K8S_OPTS(type, field)                                                                  \
    {"mode", KX_OPT_STR, "auto", offsetof(type, field.mode), 0,                                   \
     "auto | incluster | kubeconfig | off: where the Kubernetes API credentials come from"},      \
        {"kubeconfig", KX_OPT_STR, "", offsetof(type, field.kubeconfig), 0,                       \
         "kubeconfig path (default $KUBECONFIG, then ~/.kube/config)"},                           \
        {"context", KX_OPT_STR, "", offsetof(type, field.context), 0,                             \
         "kubeconfig context (default its current-context)"},                                     \
        {"serviceaccount_dir", KX_OPT_STR, "", offsetof(type, field.serviceaccount_dir), 0,       \
         "service account directory (default " KX_K8S_SA_DIR ")"},                                \
        {"server", KX_OPT_STR, "", offsetof(type, field.server), 0,                               \
         "API server URL replacing the configured one"},                                          \
        {"timeout", KX_OPT_DURATION, "10s", offsetof(type, field.timeout), 0,                     \
         "time limit of one API request"},                                                        \
    {                                                                                             \
        "connect_timeout", KX_OPT_DURATION, "5s", offsetof(type, field.connect_timeout), 0,       \
            "time limit of a TCP+TLS connect"                                                     \
    }
/* Fills o from s (o's strings borrow s's); -EINVAL with a diagnostic at
 * "at" (may be NULL) for a bad mode. */
int kx_k8s_settings_opts(const struct kx_k8s_settings *s, struct kx_k8s_opts *o,
                         const struct kx_config_node *at, struct kx_diag *d);

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

/* A resolved connection configuration. Zero-initialize; every field owned;
 * release with kx_k8s_config_release(). Decoded "-data" fields hold the PEM
 * bytes (NUL-terminated, len without it). */
struct kx_k8s_config {
    char *server;     /* "https://host:port[/prefix]", no trailing '/' */
    char *source;     /* for messages: "in-cluster service account (/var/run/...)",
                         "kubeconfig /root/.kube/config, context kind-kind" */
    char *ns;         /* default namespace ("default" when none is configured) */
    char *token;      /* bearer token (secret), NULL if none */
    char *token_file; /* file the token is re-read from (rotation), NULL if none */
    char *ca_file;    /* CA bundle path, NULL if none */
    char *ca_data;    /* CA PEM bytes (certificate-authority-data), NULL if none */
    size_t ca_len;
    char *cert_file; /* client certificate path */
    char *cert_data; /* client-certificate-data, decoded */
    size_t cert_len;
    char *key_file; /* client key path */
    char *key_data; /* client-key-data, decoded (secret) */
    size_t key_len;
    bool insecure; /* insecure-skip-tls-verify */
};

/*
 * Resolves o into cfg: mode auto/incluster/kubeconfig as documented above,
 * then o->server if set. Reads the token (and checks that files named in a
 * kubeconfig exist), so errors show up at start-up. Returns 0; -ENOENT when
 * nothing to use was found (auto: not in a cluster and no kubeconfig);
 * -ENOTSUP for mode off or an unsupported kubeconfig user (exec plugins,
 * auth-provider, basic auth); -EINVAL for a broken config; other negative
 * errnos for unreadable files. err gets "where: what failed: what to do"
 * (with file:line:col inside a kubeconfig). Not thread-safe (getenv):
 * call at start-up.
 */
int kx_k8s_config_load(const struct kx_k8s_opts *o, struct kx_k8s_config *cfg, char *err,
                       size_t errlen);

/* The kubeconfig part on an already parsed document (borrowed; relative
 * paths are relative to doc->file's directory). context NULL/"" = the
 * current-context. Same returns as above. */
int kx_k8s_kubeconfig_parse(const struct kx_config_doc *doc, const char *context,
                            struct kx_k8s_config *cfg, char *err, size_t errlen);

void kx_k8s_config_release(struct kx_k8s_config *cfg); /* zeroes; no-op on a zeroed one */

/* ------------------------------------------------------------------------ */
/* Client                                                                    */
/* ------------------------------------------------------------------------ */

struct kx_k8s;

/* kx_k8s_config_load(o) + a client on it. Caller owns; NULL + errno (the
 * -errno of kx_k8s_config_load, ENOMEM) with err filled. */
struct kx_k8s *kx_k8s_new(const struct kx_k8s_opts *o, char *err, size_t errlen);
/* Same on an explicit configuration; takes ownership of *cfg (zeroed
 * after the call, also on failure). o may be NULL (defaults). */
struct kx_k8s *kx_k8s_new_config(struct kx_k8s_config *cfg, const struct kx_k8s_opts *o, char *err,
                                 size_t errlen);
void kx_k8s_free(struct kx_k8s *c); /* no-op if NULL; not while another thread uses c */

/* Borrowed from the client, valid until kx_k8s_free(). */
const char *kx_k8s_server(const struct kx_k8s *c);
const char *kx_k8s_namespace(const struct kx_k8s *c);
const char *kx_k8s_source(const struct kx_k8s *c);

/* Any thread: the running request or watch on c returns promptly
 * (-ECANCELED / 0), and so does every later one. Irreversible. */
void kx_k8s_cancel(struct kx_k8s *c);
bool kx_k8s_cancelled(const struct kx_k8s *c);

struct kx_k8s_result {
    long status;         /* HTTP status; 0 when there was no response */
    int64_t retry_after; /* ns the server asked to wait (Retry-After or
                            details.retryAfterSeconds); 0 if none */
    char reason[64];     /* metav1.Status reason ("NotFound", "Conflict", ...); "" if none */
    char *body;          /* owned: response body, NUL-terminated; NULL if empty */
    size_t len;          /* bytes in body */
    struct cJSON *json;  /* owned: body parsed when it is JSON, else NULL */
};
void kx_k8s_result_release(struct kx_k8s_result *res); /* frees body/json; no-op when zeroed */

/*
 * One request: method ("GET", "POST", "PUT", "PATCH", "DELETE"), path with
 * optional query ("/api/v1/namespaces/shop/pods/web-1", "...?dryRun=All"),
 * content_type for body (NULL = application/json), body NUL-terminated or
 * NULL. res is always filled (zeroed first; release it in every case). A
 * 401 re-reads a token file and, when the token changed, retries once.
 * Returns 0 or a negative errno as classified at the top of this file;
 * err (may be NULL) gets the message. Thread: the client's.
 */
int kx_k8s_request(struct kx_k8s *c, const char *method, const char *path, const char *content_type,
                   const char *body, struct kx_k8s_result *res, char *err, size_t errlen);

/* ------------------------------------------------------------------------ */
/* List + watch                                                              */
/* ------------------------------------------------------------------------ */

enum kx_k8s_event_type {
    KX_K8S_LIST_BEGIN, /* a (re-)list starts: objects not ADDED again before SYNCED are gone */
    KX_K8S_ADDED,
    KX_K8S_MODIFIED,
    KX_K8S_DELETED,
    KX_K8S_BOOKMARK, /* only resource_version moved */
    KX_K8S_SYNCED,   /* the list is complete (count objects); watch events follow */
    KX_K8S_WATCHING, /* a watch stream is open (after SYNCED, or resumed after a failure) */
    KX_K8S_FAILED,   /* a list or watch failed; the loop retries in retry_in ns */
};

const char *kx_k8s_event_name(enum kx_k8s_event_type t); /* "ADDED", ... */

struct kx_k8s_event {
    enum kx_k8s_event_type type;
    const struct cJSON *object;   /* borrowed, valid during the callback: the object of
                                     ADDED/MODIFIED/DELETED/BOOKMARK; NULL otherwise */
    const char *resource_version; /* borrowed: the collection's version after this event */
    size_t count;                 /* SYNCED: objects listed */
    int error;                    /* FAILED: negative errno as for kx_k8s_request, or
                                     -EBADMSG (malformed/oversize event, ERROR event) */
    const char *message;          /* FAILED: what failed (borrowed) */
    int64_t retry_in;             /* FAILED: ns until the next attempt */
};

/* Runs on the thread that called kx_k8s_watch(); must not block for long
 * (it holds up the stream) nor call back into the same client. */
typedef void (*kx_k8s_watch_fn)(void *ctx, const struct kx_k8s_event *ev);

struct kx_k8s_watch_opts {
    const char *path;  /* borrowed: a collection, "/api/v1/pods" */
    const char *query; /* borrowed: selectors, already escaped
                          ("fieldSelector=spec.nodeName%3Dnode-a"); NULL = none */
    kx_k8s_watch_fn cb;
    void *ctx;        /* borrowed, passed to cb */
    size_t max_event; /* bytes in one event line; 0 = KX_K8S_MAX_EVENT. A longer one
                         is an error that triggers a re-list */
    size_t page_size; /* items per list page (limit/continue); 0 = 500 */
};

/*
 * The list+watch loop, until kx_k8s_cancel(c): LIST (paged) for the
 * objects and a resourceVersion, then WATCH from it with bookmarks,
 * resuming from the last version seen when a stream ends or breaks. A 410
 * (HTTP or an ERROR event), an oversize or malformed event, or another
 * ERROR event starts a new LIST. Failures back off from backoff_min,
 * doubling (with jitter) up to backoff_max, and are reported as FAILED
 * events. Returns 0 once cancelled, -EINVAL on bad arguments.
 * Thread: the client's; cb runs on it.
 */
int kx_k8s_watch(struct kx_k8s *c, const struct kx_k8s_watch_opts *w);

/* ------------------------------------------------------------------------ */
/* Helpers (pure; exposed for the responders and tests)                      */
/* ------------------------------------------------------------------------ */

/* The errno class of an HTTP status, as in the table at the top. */
int kx_k8s_classify(long status);

/*
 * "403 Forbidden: <Status.message>" from a response body that is a
 * metav1.Status, or "<code> <phrase>: <body excerpt>" for anything else, or
 * "<code> <phrase>" for an empty body; one line, at most outlen-1 bytes.
 * reason (may be NULL) gets Status.reason. Returns Status
 * details.retryAfterSeconds in ns (0 if none).
 */
int64_t kx_k8s_status_message(long status, const char *body, size_t len, char *out, size_t outlen,
                              char *reason, size_t reasonlen);

/* Percent-encodes s for a query value ("spec.nodeName=a" ->
 * "spec.nodeName%3Da") into out; 0 or -ENAMETOOLONG. */
int kx_k8s_query_escape(const char *s, char *out, size_t outlen);

#endif
