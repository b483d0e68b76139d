/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_k8s.c - lib/k8s.c and sensor/pods.c.
 *
 * Pure parts first (kubeconfig parsing, Status messages, classification,
 * the pod cache fed by hand), then against the strict Kubernetes API fake
 * (tests/fakes/k8s_api.py, HTTPS with its own CA and a bearer token): real
 * TLS requests, 401 / 403 / 404 / 409 / 422 / 429 / 5xx, CA mismatch, token
 * rotation, watch events, 410 -> re-list, oversize events, prompt stop, and
 * the sensor's pod cache with the API up, down and back.
 *
 * The fake runs as a child process for the whole group: it is killed by the
 * group teardown, by an atexit handler, by PR_SET_PDEATHSIG if this process
 * dies, and it exits by itself when its parent changes (--parent-pid).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "k8s.h"
#include "log.h"
#include "pods.h"
#include "util.h"

#define MS KX_NSEC_PER_MSEC
#define WAIT_NS (5 * KX_NSEC_PER_SEC) /* upper bound on any wait; typical is ms */

static const char *const CID_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char *const CID_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
static const char *const CID_C = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
static const char *const CID_D = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
static const char *const CID_E = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
static const char *const UID_1 = "11111111-1111-1111-1111-111111111111";
static const char *const UID_2 = "22222222-2222-2222-2222-222222222222";
static const char *const UID_3 = "33333333-3333-3333-3333-333333333333";

/* ---- temp files ----------------------------------------------------------- */

static char tmpdir[] = "/tmp/kx-test-k8s-XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *tpath(const char *name)
{
    static char buf[8][PATH_MAX];
    static int i;
    char *b = buf[i++ % 8];

    snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
    return b;
}

static void rm_rf(const char *dir)
{
    char cmd[PATH_MAX + 16];

    if (strncmp(dir, "/tmp/kx-test-k8s-", 17) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void b64(const char *in, char *out, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;

    for (size_t i = 0; i < n && o + 5 < len; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;

        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

static char *slurp(const char *path)
{
    char *s = kx_read_file(path, 1 << 20, NULL);

    assert_non_null(s);
    return s;
}

/* ---- kubeconfig parsing ---------------------------------------------------- */

static int load_kc(const char *yaml, const char *context, struct kx_k8s_config *cfg, char *err,
                   size_t errlen)
{
    struct kx_k8s_opts o = {
        .mode = KX_K8S_MODE_KUBECONFIG, .kubeconfig = tpath("kubeconfig"), .context = context};

    write_file(tpath("kubeconfig"), yaml);
    return kx_k8s_config_load(&o, cfg, err, errlen);
}

static void test_mode_parse(void **state)
{
    enum kx_k8s_mode m;

    (void)state;
    assert_int_equal(kx_k8s_mode_parse("auto", &m), 0);
    assert_int_equal(m, KX_K8S_MODE_AUTO);
    assert_int_equal(kx_k8s_mode_parse("InCluster", &m), 0);
    assert_int_equal(m, KX_K8S_MODE_INCLUSTER);
    assert_int_equal(kx_k8s_mode_parse("in-cluster", &m), 0);
    assert_int_equal(m, KX_K8S_MODE_INCLUSTER);
    assert_int_equal(kx_k8s_mode_parse("kubeconfig", &m), 0);
    assert_int_equal(m, KX_K8S_MODE_KUBECONFIG);
    assert_int_equal(kx_k8s_mode_parse("off", &m), 0);
    assert_int_equal(m, KX_K8S_MODE_OFF);
    assert_int_equal(kx_k8s_mode_parse("", &m), 0);
    assert_int_equal(m, KX_K8S_MODE_AUTO);
    assert_int_equal(kx_k8s_mode_parse("cluster", &m), -EINVAL);
    assert_string_equal(kx_k8s_mode_name(KX_K8S_MODE_OFF), "off");
}

static void test_settings_table(void **state)
{
    struct kx_k8s_settings s = {0};
    struct kx_k8s_opts o;
    struct kx_diag d = {0};
    struct kx_config_doc *doc = kx_config_load_string(
        "sensor.yaml", "mode: kubeconfig\nkubeconfig: /x/config\ntimeout: 3s\n", &d);

    (void)state;
    assert_non_null(doc);
    assert_int_equal(kx_config_apply(kx_k8s_settings_table, doc->root, &s, NULL, &d), 0);
    assert_int_equal(kx_k8s_settings_opts(&s, &o, doc->root, &d), 0);
    assert_int_equal(o.mode, KX_K8S_MODE_KUBECONFIG);
    assert_string_equal(o.kubeconfig, "/x/config");
    assert_null(o.server);
    assert_int_equal(o.timeout, 3 * KX_NSEC_PER_SEC);
    assert_int_equal(o.connect_timeout, 5 * KX_NSEC_PER_SEC);
    free(s.mode);
    s.mode = strdup("sometimes");
    assert_int_equal(kx_k8s_settings_opts(&s, &o, doc->root, &d), -EINVAL);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.msgs[0], "sensor.yaml:1:1: kubernetes.mode: \"sometimes\""));
    kx_config_release(kx_k8s_settings_table, &s);
    kx_diag_free(&d);
    kx_config_free(doc);
}

static void test_kubeconfig_contexts(void **state)
{
    struct kx_k8s_config cfg;
    char err[512], yaml[2048];

    (void)state;
    write_file(tpath("ca-a.crt"), "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n");
    write_file(tpath("ca-b.crt"), "B");
    snprintf(yaml, sizeof(yaml),
             "apiVersion: v1\n"
             "kind: Config\n"
             "current-context: a\n"
             "clusters:\n"
             "- name: ca\n"
             "  cluster:\n"
             "    server: https://10.0.0.1:6443/\n"
             "    certificate-authority: ca-a.crt\n"
             "- name: cb\n"
             "  cluster:\n"
             "    server: https://[fd00::1]:443\n"
             "    certificate-authority: %s\n"
             "contexts:\n"
             "- name: a\n"
             "  context: {cluster: ca, user: ua, namespace: shop}\n"
             "- name: b\n"
             "  context: {cluster: cb, user: ub}\n"
             "users:\n"
             "- name: ua\n"
             "  user: {token: tok-a}\n"
             "- name: ub\n"
             "  user:\n"
             "    token: \"\"\n",
             tpath("ca-b.crt"));

    assert_int_equal(load_kc(yaml, NULL, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.server, "https://10.0.0.1:6443"); /* trailing '/' dropped */
    assert_string_equal(cfg.ns, "shop");
    assert_string_equal(cfg.token, "tok-a");
    assert_null(cfg.token_file);
    assert_string_equal(cfg.ca_file, tpath("ca-a.crt")); /* relative to the kubeconfig */
    assert_null(cfg.ca_data);
    assert_false(cfg.insecure);
    assert_non_null(strstr(cfg.source, "context a"));
    kx_k8s_config_release(&cfg);
    assert_null(cfg.server);

    /* An explicit context wins over current-context. */
    assert_int_equal(load_kc(yaml, "b", &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.server, "https://[fd00::1]:443");
    assert_string_equal(cfg.ns, "default");
    assert_null(cfg.token); /* empty token = none */
    assert_string_equal(cfg.ca_file, tpath("ca-b.crt"));
    kx_k8s_config_release(&cfg);

    /* A server override replaces the configured one. */
    {
        struct kx_k8s_opts o = {.mode = KX_K8S_MODE_KUBECONFIG,
                                .kubeconfig = tpath("kubeconfig"),
                                .server = "https://127.0.0.1:1234"};

        assert_int_equal(kx_k8s_config_load(&o, &cfg, err, sizeof(err)), 0);
        assert_string_equal(cfg.server, "https://127.0.0.1:1234");
        kx_k8s_config_release(&cfg);
    }
}

static void test_kubeconfig_data_and_token_file(void **state)
{
    static const char ca[] = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
    static const char cert[] = "-----BEGIN CERTIFICATE-----\ncert\n-----END CERTIFICATE-----\n";
    static const char key[] = "-----BEGIN PRIVATE KEY-----\nkey!\n-----END PRIVATE KEY-----\n";
    char ca64[256], cert64[256], key64[256], yaml[2048], err[512];
    struct kx_k8s_config cfg;

    (void)state;
    b64(ca, ca64, sizeof(ca64));
    b64(cert, cert64, sizeof(cert64));
    b64(key, key64, sizeof(key64));
    write_file(tpath("token"), "  file-token\n");
    snprintf(yaml, sizeof(yaml),
             "apiVersion: v1\n"
             "kind: Config\n"
             "current-context: c\n"
             "clusters:\n"
             "- name: k\n"
             "  cluster:\n"
             "    server: https://k8s.example:443\n"
             "    certificate-authority-data: %s\n"
             "    insecure-skip-tls-verify: false\n"
             "contexts:\n"
             "- name: c\n"
             "  context:\n"
             "    cluster: k\n"
             "    user: u\n"
             "users:\n"
             "- name: u\n"
             "  user:\n"
             "    tokenFile: token\n"
             "    client-certificate-data: %s\n"
             "    client-key-data: |\n"
             "      %.40s\n"
             "      %s\n",
             ca64, cert64, key64, key64 + 40);
    assert_int_equal(load_kc(yaml, NULL, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.ca_len, strlen(ca));
    assert_memory_equal(cfg.ca_data, ca, strlen(ca));
    assert_int_equal(cfg.cert_len, strlen(cert));
    assert_string_equal(cfg.cert_data, cert);
    assert_int_equal(cfg.key_len, strlen(key)); /* base64 split over lines */
    assert_string_equal(cfg.key_data, key);
    assert_string_equal(cfg.token, "file-token"); /* trimmed */
    assert_string_equal(cfg.token_file, tpath("token"));
    assert_null(cfg.ca_file);
    kx_k8s_config_release(&cfg);
}

/* One broken kubeconfig: errno and words the message must have. */
struct kc_case {
    const char *yaml;
    int err;
    const char *want1, *want2;
};

#define KC_HEAD "apiVersion: v1\nkind: Config\n"
#define KC_CLUSTER "clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:6443\n"
#define KC_CTX "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"

static void test_kubeconfig_errors(void **state)
{
    static const struct kc_case cases[] = {
        {KC_HEAD KC_CLUSTER KC_CTX, -EINVAL, "no current-context", "kubectl config use-context"},
        {KC_HEAD "current-context: nope\n" KC_CLUSTER KC_CTX, -EINVAL,
         ":3:18: kubeconfig: context \"nope\" is not defined in \"contexts\"", NULL},
        {KC_HEAD "current-context: c\n" KC_CTX, -EINVAL,
         "cluster \"k\" is not defined in \"clusters\"", NULL},
        {KC_HEAD "current-context: c\nclusters:\n- name: k\n  cluster: {}\n" KC_CTX, -EINVAL,
         "cluster \"k\" has no server", NULL},
        {KC_HEAD "current-context: c\nclusters:\n- name: k\n  cluster: {server: 10.0.0.1}\n" KC_CTX,
         -EINVAL, "must start with https://", NULL},
        {KC_HEAD "current-context: c\n" KC_CLUSTER
                 "    certificate-authority-data: \"not base64!\"\n" KC_CTX,
         -EINVAL, ":8:33: kubeconfig: \"certificate-authority-data\" is not valid base64", NULL},
        {KC_HEAD "current-context: c\n" KC_CLUSTER
                 "    certificate-authority: /nonexistent/ca\n" KC_CTX,
         -ENOENT, "certificate-authority \"/nonexistent/ca\": No such file or directory", NULL},
        {KC_HEAD "current-context: c\n" KC_CLUSTER KC_CTX "users:\n- name: u\n  user:\n"
                 "    exec: {command: aws}\n",
         -ENOTSUP, "exec is not supported", "use token, tokenFile or a client certificate"},
        {KC_HEAD "current-context: c\n" KC_CLUSTER KC_CTX "users:\n- name: u\n  user:\n"
                 "    client-certificate-data: QUJD\n",
         -EINVAL, "client certificate needs its key", NULL},
        {KC_HEAD "current-context: c\n" KC_CLUSTER KC_CTX, -EINVAL,
         "user \"u\" is not defined in \"users\"", NULL},
        {KC_HEAD "current-context: c\nclusters: {k: 1}\n" KC_CTX, -EINVAL,
         "\"clusters\" must be a list", NULL},
        {KC_HEAD "current-context: c\n" KC_CLUSTER KC_CTX "users:\n- name: u\n  user:\n"
                 "    tokenFile: missing-token\n",
         -ENOENT, "tokenFile", "missing-token\": No such file"},
        {KC_HEAD "current-context: c\n" KC_CLUSTER "    proxy-url: http://proxy:3128\n" KC_CTX,
         -ENOTSUP, "proxy-url is not supported", NULL},
        {KC_HEAD "current-context: c\n" KC_CLUSTER KC_CTX "users:\n- name: u\n  user:\n"
                 "    token: \"abc\\r\\nX-Evil: 1\"\n",
         -EINVAL, "the token contains spaces or control characters", NULL},
        {"- just\n- a list\n", -EINVAL, "must be a map", NULL},
        {"clusters: [\n", -EINVAL, "kubeconfig:", NULL},
    };
    char err[512];

    (void)state;
    for (size_t i = 0; i < KX_ARRAY_SIZE(cases); i++) {
        struct kx_k8s_config cfg;
        int rc = load_kc(cases[i].yaml, NULL, &cfg, err, sizeof(err));

        if (rc != cases[i].err || !strstr(err, cases[i].want1) ||
            (cases[i].want2 && !strstr(err, cases[i].want2)))
            fail_msg("case %zu: rc %d (want %d), err \"%s\"", i, rc, cases[i].err, err);
        assert_null(cfg.server); /* released on error */
        assert_non_null(strstr(err, tpath("kubeconfig")));
    }
}

static void test_config_auto_and_incluster(void **state)
{
    struct kx_k8s_opts o = {.mode = KX_K8S_MODE_AUTO};
    struct kx_k8s_config cfg;
    char err[512], *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

    (void)state;
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("KUBECONFIG");
    setenv("HOME", tpath("nohome"), 1);
    assert_int_equal(kx_k8s_config_load(&o, &cfg, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "not in a cluster"));
    assert_non_null(strstr(err, "mode off"));

    /* $KUBECONFIG, first existing entry of a list. */
    write_file(tpath("kc2"), KC_HEAD "current-context: c\n" KC_CLUSTER KC_CTX
                                     "users:\n- name: u\n  user: {token: t}\n");
    {
        char list[PATH_MAX * 2];

        snprintf(list, sizeof(list), "%s:%s", tpath("missing-kc"), tpath("kc2"));
        setenv("KUBECONFIG", list, 1);
    }
    assert_int_equal(kx_k8s_config_load(&o, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.server, "https://127.0.0.1:6443");
    kx_k8s_config_release(&cfg);
    setenv("KUBECONFIG", tpath("missing-kc"), 1); /* named explicitly: an error */
    assert_int_equal(kx_k8s_config_load(&o, &cfg, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "missing-kc"));
    unsetenv("KUBECONFIG");

    /* In a pod: the service account directory. */
    mkdir(tpath("sa"), 0700);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::10", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    o.sa_dir = tpath("sa");
    assert_int_equal(kx_k8s_config_load(&o, &cfg, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "service account token"));
    assert_non_null(strstr(err, "automountServiceAccountToken"));
    write_file(tpath("sa/token"), "sa-token\n");
    assert_int_equal(kx_k8s_config_load(&o, &cfg, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "ca.crt"));
    write_file(tpath("sa/ca.crt"), "x");
    write_file(tpath("sa/namespace"), "klaxon\n");
    assert_int_equal(kx_k8s_config_load(&o, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.server, "https://[fd00::10]:443");
    assert_string_equal(cfg.token, "sa-token");
    assert_string_equal(cfg.token_file, tpath("sa/token"));
    assert_string_equal(cfg.ca_file, tpath("sa/ca.crt"));
    assert_string_equal(cfg.ns, "klaxon");
    assert_non_null(strstr(cfg.source, "in-cluster"));
    kx_k8s_config_release(&cfg);

    o.mode = KX_K8S_MODE_OFF;
    assert_int_equal(kx_k8s_config_load(&o, &cfg, err, sizeof(err)), -ENOTSUP);
    assert_null(kx_k8s_new(&o, err, sizeof(err)));
    assert_int_equal(errno, ENOTSUP);

    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    o.mode = KX_K8S_MODE_INCLUSTER;
    assert_int_equal(kx_k8s_config_load(&o, &cfg, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
    if (home)
        setenv("HOME", home, 1);
    free(home);
}

/* ---- status bodies, classification, escaping ------------------------------ */

static void test_status_message(void **state)
{
    static const char forbidden[] =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
        "\"message\":\"pods \\\"x\\\" is forbidden: User \\\"system:serviceaccount:klaxon:s\\\" "
        "cannot delete resource \\\"pods\\\" in API group \\\"\\\" in the namespace \\\"shop\\\"\","
        "\"reason\":\"Forbidden\",\"details\":{\"name\":\"x\",\"kind\":\"pods\"},\"code\":403}";
    static const char busy[] =
        "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"too many\\nrequests\","
        "\"reason\":\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":7},\"code\":429}";
    char out[512], reason[64];

    (void)state;
    assert_int_equal(kx_k8s_status_message(403, forbidden, strlen(forbidden), out, sizeof(out),
                                           reason, sizeof(reason)),
                     0);
    assert_string_equal(out, "403 Forbidden: pods \"x\" is forbidden: User "
                             "\"system:serviceaccount:klaxon:s\" cannot delete resource \"pods\" "
                             "in API group \"\" in the namespace \"shop\"");
    assert_string_equal(reason, "Forbidden");
    assert_int_equal(
        kx_k8s_status_message(429, busy, strlen(busy), out, sizeof(out), reason, sizeof(reason)),
        7 * KX_NSEC_PER_SEC);
    assert_string_equal(out, "429 Too Many Requests: too many requests"); /* one line */
    assert_string_equal(reason, "TooManyRequests");
    kx_k8s_status_message(404, "404 page not found\n", 19, out, sizeof(out), reason,
                          sizeof(reason));
    assert_string_equal(out, "404 Not Found: 404 page not found");
    assert_string_equal(reason, "");
    kx_k8s_status_message(503, NULL, 0, out, sizeof(out), NULL, 0);
    assert_string_equal(out, "503 Service Unavailable");
    kx_k8s_status_message(418, "{\"kind\":\"Status\"", 17, out, sizeof(out), NULL, 0);
    assert_string_equal(out, "418 Client Error: {\"kind\":\"Status\"");
    kx_k8s_status_message(403, forbidden, strlen(forbidden), out, 20, NULL, 0);
    assert_int_equal(strlen(out), 19); /* bounded */
}

static void test_classify_and_escape(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(kx_k8s_classify(200), 0);
    assert_int_equal(kx_k8s_classify(201), 0);
    assert_int_equal(kx_k8s_classify(401), -EACCES);
    assert_int_equal(kx_k8s_classify(403), -EACCES);
    assert_int_equal(kx_k8s_classify(404), -ENOENT);
    assert_int_equal(kx_k8s_classify(409), -EEXIST);
    assert_int_equal(kx_k8s_classify(410), -ESTALE);
    assert_int_equal(kx_k8s_classify(422), -EINVAL);
    assert_int_equal(kx_k8s_classify(400), -EINVAL);
    assert_int_equal(kx_k8s_classify(415), -EINVAL);
    assert_int_equal(kx_k8s_classify(429), -EAGAIN);
    assert_int_equal(kx_k8s_classify(500), -EAGAIN);
    assert_int_equal(kx_k8s_classify(503), -EAGAIN);
    assert_int_equal(kx_k8s_query_escape("spec.nodeName=node-a,x y", out, sizeof(out)), 0);
    assert_string_equal(out, "spec.nodeName%3Dnode-a%2Cx%20y");
    assert_int_equal(kx_k8s_query_escape("=====", out, 8), -ENAMETOOLONG);
}

/* ---- the pod cache fed by hand ---------------------------------------------- */

/* A pod object; containers "name=id" pairs as a JSON array text of statuses. */
static cJSON *pod_json(const char *ns, const char *name, const char *uid, const char *node,
                       const char *labels, const char *statuses, const char *extra_status)
{
    char buf[8192];
    cJSON *j;

    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"uid\":\"%s\","
             "\"resourceVersion\":\"1\",\"labels\":%s},"
             "\"spec\":{\"nodeName\":\"%s\"},"
             "\"status\":{\"phase\":\"Running\",\"containerStatuses\":%s%s}}",
             name, ns, uid, labels ? labels : "{}", node, statuses ? statuses : "[]",
             extra_status ? extra_status : "");
    j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

static void feed(struct kx_pods *p, enum kx_k8s_event_type type, cJSON *obj)
{
    struct kx_k8s_event ev = {.type = type, .object = obj, .resource_version = "1"};

    kx_pods_apply(p, &ev);
    cJSON_Delete(obj);
}

static void test_pods_cache_unit(void **state)
{
    struct kx_pods *p = kx_pods_new();
    struct kx_pod_info pi;
    struct kx_pods_stats st;
    char statuses[1024], extra[1024], v[64], id[80];
    struct kx_k8s_event ev = {.type = KX_K8S_LIST_BEGIN};

    (void)state;
    assert_non_null(p);
    assert_int_equal(kx_pods_lookup(p, UID_1, CID_A, &pi), 0);
    assert_int_equal(kx_pods_lookup(NULL, UID_1, CID_A, &pi), 0);

    kx_pods_apply(p, &ev);
    snprintf(statuses, sizeof(statuses),
             "[{\"name\":\"nginx\",\"containerID\":\"containerd://%s\","
             "\"lastState\":{\"terminated\":{\"containerID\":\"containerd://%s\"}}},"
             "{\"name\":\"sidecar\",\"containerID\":\"cri-o://%s\"},"
             "{\"name\":\"waiting\"}]",
             CID_A, CID_E, CID_B);
    snprintf(extra, sizeof(extra),
             ",\"initContainerStatuses\":[{\"name\":\"init\",\"containerID\":\"docker://%s\"}],"
             "\"ephemeralContainerStatuses\":[{\"name\":\"debug\",\"containerID\":"
             "\"containerd://%s\"}]",
             CID_C, CID_D);
    feed(p, KX_K8S_ADDED,
         pod_json("shop", "web-1", UID_1, "node-a",
                  "{\"tier\":\"front\",\"app\":\"web\",\"app.kubernetes.io/name\":\"shop\"}",
                  statuses, extra));
    feed(p, KX_K8S_ADDED, pod_json("shop", "db-0", UID_2, "node-a", NULL, NULL, NULL));
    ev.type = KX_K8S_SYNCED;
    kx_pods_apply(p, &ev);

    /* By pod UID only. */
    assert_int_equal(kx_pods_lookup(p, UID_1, NULL, &pi), 1);
    assert_string_equal(pi.ns, "shop");
    assert_string_equal(pi.name, "web-1");
    assert_string_equal(pi.uid, UID_1);
    assert_string_equal(pi.container, "");
    assert_string_equal(pi.labels, "app:web,app.kubernetes.io/name:shop,tier:front");
    assert_true(kx_pod_info_label(&pi, "app", v, sizeof(v)));
    assert_string_equal(v, "web");
    assert_true(kx_pod_info_label(&pi, "app.kubernetes.io/name", v, sizeof(v)));
    assert_string_equal(v, "shop");
    assert_false(kx_pod_info_label(&pi, "ap", v, sizeof(v)));
    /* By container id, whatever the runtime prefix, init / ephemeral / last. */
    assert_int_equal(kx_pods_lookup(p, NULL, CID_A, &pi), 1);
    assert_string_equal(pi.container, "nginx");
    assert_int_equal(kx_pods_lookup(p, "", CID_B, &pi), 1);
    assert_string_equal(pi.container, "sidecar");
    assert_int_equal(kx_pods_lookup(p, UID_1, CID_C, &pi), 1);
    assert_string_equal(pi.container, "init");
    assert_int_equal(kx_pods_lookup(p, UID_1, CID_D, &pi), 1);
    assert_string_equal(pi.container, "debug");
    assert_int_equal(kx_pods_lookup(p, NULL, CID_E, &pi), 1); /* just restarted */
    assert_string_equal(pi.container, "nginx");
    /* Upper-case input; an unknown container in a known pod; unknown both. */
    for (size_t i = 0; i < 64; i++)
        id[i] = 'A';
    id[64] = '\0';
    assert_int_equal(kx_pods_lookup(p, UID_2, id, &pi), 1); /* the container decides */
    assert_string_equal(pi.name, "web-1");
    assert_string_equal(pi.container, "nginx");
    memset(id, 'f', 64);
    assert_int_equal(kx_pods_lookup(p, UID_2, id, &pi), 1);
    assert_string_equal(pi.name, "db-0");
    assert_string_equal(pi.container, "");
    assert_int_equal(kx_pods_lookup(p, UID_3, id, &pi), 0);
    assert_string_equal(pi.name, "");

    /* A restart: the new id resolves, the one before last does not. */
    snprintf(statuses, sizeof(statuses),
             "[{\"name\":\"nginx\",\"containerID\":\"containerd://%s\","
             "\"lastState\":{\"terminated\":{\"containerID\":\"containerd://%s\"}}}]",
             CID_C, CID_A);
    feed(p, KX_K8S_MODIFIED, pod_json("shop", "web-1", UID_1, "node-a", NULL, statuses, NULL));
    assert_int_equal(kx_pods_lookup(p, NULL, CID_C, &pi), 1);
    assert_string_equal(pi.container, "nginx");
    assert_string_equal(pi.labels, "");
    assert_int_equal(kx_pods_lookup(p, NULL, CID_E, &pi), 0);
    assert_int_equal(kx_pods_lookup(p, NULL, CID_B, &pi), 0);

    /* Static pod: reachable by its config hash (the cgroup's pod id). */
    {
        cJSON *sp = pod_json("kube-system", "etcd-node-a", UID_3, "node-a", NULL, NULL, NULL);

        cJSON_AddItemToObject(cJSON_GetObjectItem(sp, "metadata"), "annotations",
                              cJSON_Parse("{\"kubernetes.io/config.hash\":"
                                          "\"0123456789ABCDEF0123456789abcdef\"}"));
        feed(p, KX_K8S_ADDED, sp);
    }
    assert_int_equal(kx_pods_lookup(p, "0123456789abcdef0123456789abcdef", NULL, &pi), 1);
    assert_string_equal(pi.name, "etcd-node-a");

    /* Delete, then a re-list that no longer has db-0. */
    feed(p, KX_K8S_DELETED, pod_json("shop", "web-1", UID_1, "node-a", NULL, NULL, NULL));
    assert_int_equal(kx_pods_lookup(p, UID_1, CID_C, &pi), 0);
    ev.type = KX_K8S_LIST_BEGIN;
    kx_pods_apply(p, &ev);
    feed(p, KX_K8S_ADDED,
         pod_json("kube-system", "etcd-node-a", UID_3, "node-a", NULL, NULL, NULL));
    assert_int_equal(kx_pods_lookup(p, UID_2, NULL, &pi), 1); /* stale until the list ends */
    ev.type = KX_K8S_SYNCED;
    kx_pods_apply(p, &ev);
    assert_int_equal(kx_pods_lookup(p, UID_2, NULL, &pi), 0);
    assert_int_equal(kx_pods_lookup(p, UID_3, NULL, &pi), 1);

    /* Objects that are not usable pods are ignored. */
    feed(p, KX_K8S_ADDED, cJSON_Parse("{\"metadata\":{\"name\":\"x\"}}"));
    feed(p, KX_K8S_ADDED, cJSON_Parse("[1,2]"));
    feed(p, KX_K8S_DELETED, cJSON_Parse("{}"));
    kx_pods_stats(p, &st);
    assert_int_equal(st.pods, 1);
    assert_int_equal(st.lists, 2);
    assert_true(st.synced);
    assert_true(st.lookups >= 15);
    kx_pods_free(p);
    kx_pods_free(NULL);
}

static void test_pods_cache_bounded(void **state)
{
    struct kx_pods *p = kx_pods_new();
    struct kx_pod_info pi;
    struct kx_pods_stats st;
    char uid[40], name[32], labels[4096];
    size_t o = 0;

    (void)state;
    for (int i = 0; i < KX_PODS_MAX + 10; i++) {
        snprintf(uid, sizeof(uid), "%08x-0000-0000-0000-000000000000", i);
        snprintf(name, sizeof(name), "p-%d", i);
        feed(p, KX_K8S_ADDED, pod_json("ns", name, uid, "n", NULL, NULL, NULL));
    }
    kx_pods_stats(p, &st);
    assert_int_equal(st.pods, KX_PODS_MAX);
    assert_int_equal(st.evicted, 10);
    assert_int_equal(kx_pods_lookup(p, "00000000-0000-0000-0000-000000000000", NULL, &pi), 0);
    assert_int_equal(kx_pods_lookup(p, "00000009-0000-0000-0000-000000000000", NULL, &pi), 0);
    assert_int_equal(kx_pods_lookup(p, "0000000a-0000-0000-0000-000000000000", NULL, &pi), 1);
    assert_string_equal(pi.name, "p-10");

    /* Labels beyond the text bound: whole labels are left out. */
    o += (size_t)snprintf(labels + o, sizeof(labels) - o, "{");
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(labels + o, sizeof(labels) - o, "%s\"key-%02d\":\"%040d\"",
                              i ? "," : "", i, i);
    snprintf(labels + o, sizeof(labels) - o, "}");
    feed(p, KX_K8S_ADDED, pod_json("ns", "many", UID_1, "n", labels, NULL, NULL));
    assert_int_equal(kx_pods_lookup(p, UID_1, NULL, &pi), 1);
    assert_true(pi.labels_truncated);
    assert_true(strlen(pi.labels) <= KX_POD_LABELS_MAX);
    assert_int_equal(strncmp(pi.labels, "key-00:", 7), 0);
    assert_int_not_equal(pi.labels[strlen(pi.labels) - 1], ',');
    kx_pods_free(p);
}

/* ---- the fake API server ------------------------------------------------------ */

struct fake {
    pid_t pid;
    char dir[PATH_MAX];
    int port;
    char url[128];
    char ca[PATH_MAX], other_ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
    char token[128];
    struct kx_k8s *ctl; /* control client: /_fake/... */
};

static struct fake fk = {.pid = -1};

static void fake_kill(void)
{
    if (fk.pid > 0) {
        kill(fk.pid, SIGKILL);
        waitpid(fk.pid, NULL, 0);
        fk.pid = -1;
    }
}

/* tests/fakes/k8s_api.py, from the working directory or above the binary. */
static void fake_script(char *out, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n;

    snprintf(out, len, "tests/fakes/k8s_api.py");
    if (access(out, R_OK) == 0)
        return;
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    for (char *d = dirname(exe); strcmp(d, "/") != 0; d = dirname(d)) {
        snprintf(out, len, "%s/tests/fakes/k8s_api.py", d);
        if (access(out, R_OK) == 0)
            return;
    }
    fail_msg("tests/fakes/k8s_api.py not found");
}

static int fake_start(void **state)
{
    char script[PATH_MAX], ppid[32], state_path[PATH_MAX + 16];
    struct kx_k8s_config cfg = {0};
    int64_t deadline;
    char *text, err[512];
    cJSON *j;

    (void)state;
    fake_script(script, sizeof(script));
    snprintf(fk.dir, sizeof(fk.dir), "%s/fake", tmpdir);
    mkdir(fk.dir, 0700);
    snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
    fk.pid = fork();
    assert_true(fk.pid >= 0);
    if (fk.pid == 0) {
        int devnull = open("/dev/null", O_RDWR);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != (pid_t)atoi(ppid))
            _exit(1);
        dup2(devnull, 0);
        dup2(devnull, 1);
        execl("/usr/bin/python3", "python3", script, "--port", "0", "--state-dir", fk.dir,
              "--parent-pid", ppid, (char *)NULL);
        _exit(127);
    }
    atexit(fake_kill);
    snprintf(state_path, sizeof(state_path), "%s/state.json", fk.dir);
    deadline = kx_monotonic_ns() + 10 * KX_NSEC_PER_SEC;
    while (access(state_path, R_OK) != 0) {
        int st;

        if (waitpid(fk.pid, &st, WNOHANG) == fk.pid) {
            fk.pid = -1;
            fail_msg("the k8s fake exited at start");
        }
        assert_true(kx_monotonic_ns() < deadline);
        usleep(10000);
    }
    text = slurp(state_path);
    j = cJSON_Parse(text);
    assert_non_null(j);
    fk.port = cJSON_GetObjectItem(j, "port")->valueint;
    snprintf(fk.url, sizeof(fk.url), "%s", cJSON_GetObjectItem(j, "url")->valuestring);
    snprintf(fk.ca, sizeof(fk.ca), "%s", cJSON_GetObjectItem(j, "ca")->valuestring);
    snprintf(fk.other_ca, sizeof(fk.other_ca), "%s",
             cJSON_GetObjectItem(j, "other_ca")->valuestring);
    snprintf(fk.cert, sizeof(fk.cert), "%s", cJSON_GetObjectItem(j, "client_cert")->valuestring);
    snprintf(fk.key, sizeof(fk.key), "%s", cJSON_GetObjectItem(j, "client_key")->valuestring);
    snprintf(fk.token, sizeof(fk.token), "%s", cJSON_GetObjectItem(j, "token")->valuestring);
    cJSON_Delete(j);
    free(text);

    cfg.server = strdup(fk.url);
    cfg.ca_file = strdup(fk.ca);
    cfg.token = strdup(fk.token);
    cfg.source = strdup("test control client");
    cfg.ns = strdup("default");
    fk.ctl = kx_k8s_new_config(&cfg, NULL, err, sizeof(err));
    assert_non_null(fk.ctl);
    return 0;
}

static int fake_stop(void **state)
{
    (void)state;
    kx_k8s_free(fk.ctl);
    fk.ctl = NULL;
    fake_kill();
    return 0;
}

/* A control call that must succeed; returns the parsed answer (caller frees). */
static cJSON *ctl(const char *method, const char *path, const char *body)
{
    struct kx_k8s_result res;
    char err[512];
    int rc = kx_k8s_request(fk.ctl, method, path, NULL, body, &res, err, sizeof(err));
    cJSON *j;

    if (rc != 0)
        fail_msg("control %s %s: %s", method, path, err);
    j = res.json;
    res.json = NULL;
    kx_k8s_result_release(&res);
    return j;
}

static void ctl0(const char *method, const char *path, const char *body)
{
    cJSON_Delete(ctl(method, path, body));
}

/* Creates/replaces a pod on the fake: containers as "name=64hex" args. */
static void add_pod(const char *ns, const char *name, const char *uid, const char *node,
                    const char *labels, const char *cname, const char *cid)
{
    char body[8192], st[512] = "[]";

    if (cname)
        snprintf(st, sizeof(st), "[{\"name\":\"%s\",\"containerID\":\"containerd://%s\"}]", cname,
                 cid);
    snprintf(body, sizeof(body),
             "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"uid\":\"%s\",\"labels\":%s},"
             "\"spec\":{\"nodeName\":\"%s\"},\"status\":{\"phase\":\"Running\","
             "\"containerStatuses\":%s}}",
             name, ns, uid, labels ? labels : "{}", node, st);
    ctl0("POST", "/_fake/pods", body);
}

static void del_pod(const char *ns, const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "/_fake/pods/%s/%s", ns, name);
    ctl0("DELETE", path, NULL);
}

static int open_watches(void)
{
    cJSON *j = ctl("GET", "/_fake/watches", NULL);
    int n = cJSON_GetObjectItem(j, "open")->valueint;

    cJSON_Delete(j);
    return n;
}

static int fake_reset(void **state)
{
    (void)state;
    ctl0("POST", "/_fake/reset", NULL);
    return 0;
}

/* A service account directory for the fake and in-cluster env vars. */
static void sa_dir_for_fake(const char *dir, const char *token)
{
    char path[PATH_MAX + 32], *ca = slurp(fk.ca), port[16];

    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/token", dir);
    write_file(path, token);
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    write_file(path, ca);
    snprintf(path, sizeof(path), "%s/namespace", dir);
    write_file(path, "klaxon");
    free(ca);
    snprintf(port, sizeof(port), "%d", fk.port);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
}

static struct kx_k8s_opts fast_opts(enum kx_k8s_mode mode, const char *sa, const char *kc)
{
    struct kx_k8s_opts o = {
        .mode = mode,
        .sa_dir = sa,
        .kubeconfig = kc,
        .timeout = 3 * KX_NSEC_PER_SEC,
        .connect_timeout = KX_NSEC_PER_SEC,
        .backoff_min = 50 * MS,
        .backoff_max = 200 * MS,
    };

    return o;
}

static struct kx_k8s *incluster_client(const char *token)
{
    struct kx_k8s_opts o = fast_opts(KX_K8S_MODE_INCLUSTER, tpath("sa"), NULL);
    struct kx_k8s *c;
    char err[512];

    sa_dir_for_fake(tpath("sa"), token);
    c = kx_k8s_new(&o, err, sizeof(err));
    if (!c)
        fail_msg("client: %s", err);
    return c;
}

/* The last API request the fake logged (not the control ones). */
static cJSON *last_request(void)
{
    cJSON *all = ctl("GET", "/_fake/requests", NULL);
    int n = cJSON_GetArraySize(all);
    cJSON *last;

    assert_true(n > 0);
    last = cJSON_DetachItemFromArray(all, n - 1);
    cJSON_Delete(all);
    return last;
}

/* ---- requests ------------------------------------------------------------------ */

static void test_request_incluster_tls(void **state)
{
    struct kx_k8s *c = incluster_client(fk.token);
    struct kx_k8s_result res;
    char err[512];
    cJSON *req;

    (void)state;
    add_pod("shop", "web-1", UID_1, "node-a", NULL, NULL, NULL);
    assert_string_equal(kx_k8s_namespace(c), "klaxon");
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/namespaces/shop/pods/web-1", NULL, NULL,
                                    &res, err, sizeof(err)),
                     0);
    assert_int_equal(res.status, 200);
    assert_non_null(res.json);
    assert_string_equal(cJSON_GetObjectItem(res.json, "kind")->valuestring, "Pod");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(res.json, "metadata"), "uid")->valuestring, UID_1);
    kx_k8s_result_release(&res);
    req = last_request();
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(req, "bearer")));
    assert_string_equal(cJSON_GetObjectItem(req, "accept")->valuestring, "application/json");
    assert_non_null(strstr(cJSON_GetObjectItem(req, "user_agent")->valuestring, "klaxon/"));
    cJSON_Delete(req);

    /* Not found: the Status message, -ENOENT. */
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/namespaces/shop/pods/nope", NULL, NULL, &res,
                                    err, sizeof(err)),
                     -ENOENT);
    assert_int_equal(res.status, 404);
    assert_string_equal(res.reason, "NotFound");
    assert_string_equal(err, "GET /api/v1/namespaces/shop/pods/nope: 404 Not Found: pods \"nope\" "
                             "not found");
    kx_k8s_result_release(&res);
    /* A verb the resource does not have. */
    assert_int_equal(
        kx_k8s_request(c, "PUT", "/api/v1/pods", KX_K8S_JSON, "{}", &res, err, sizeof(err)),
        -EINVAL);
    assert_int_equal(res.status, 405);
    kx_k8s_result_release(&res);
    req = last_request();
    assert_string_equal(cJSON_GetObjectItem(req, "content_type")->valuestring, KX_K8S_JSON);
    cJSON_Delete(req);
    /* A bad field selector: 400 with the server's message. */
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods?fieldSelector=spec.color%3Dred", NULL,
                                    NULL, NULL, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "GET /api/v1/pods: 400 Bad Request: field label not supported: "
                             "spec.color");
    kx_k8s_free(c);
}

static void test_request_auth_failures(void **state)
{
    struct kx_k8s *c = incluster_client("wrong-token");
    struct kx_k8s_result res;
    char err[512];

    (void)state;
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, &res, err, sizeof(err)),
                     -EACCES);
    assert_int_equal(res.status, 401);
    assert_string_equal(res.reason, "Unauthorized");
    assert_non_null(strstr(err, "GET /api/v1/pods: 401 Unauthorized: Unauthorized ("));
    assert_non_null(strstr(err, "configuration"));
    assert_non_null(strstr(err, "in-cluster service account"));
    assert_null(strstr(err, "wrong-token")); /* never echoed */
    kx_k8s_result_release(&res);
    kx_k8s_free(c);

    /* RBAC: 403 with the real message and a hint. */
    c = incluster_client(fk.token);
    ctl0("POST", "/_fake/rbac", "{\"deny\":[{\"verb\":\"list\",\"resource\":\"pods\"}]}");
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/namespaces/shop/pods", NULL, NULL, &res, err,
                                    sizeof(err)),
                     -EACCES);
    assert_int_equal(res.status, 403);
    assert_non_null(strstr(err, "403 Forbidden: pods is forbidden: User "
                                "\"system:serviceaccount:klaxon:klaxon-sensor\" cannot list "
                                "resource \"pods\" in API group \"\" in the namespace \"shop\""));
    assert_non_null(strstr(err, "(RBAC:"));
    kx_k8s_result_release(&res);
    kx_k8s_free(c);
}

/* Statuses from injected faults: 409, 422, 429 + Retry-After, 500, 503. */
static void test_request_classification(void **state)
{
    static const struct {
        int status;
        const char *extra;
        int want;
    } cases[] = {
        {409, "", -EEXIST},
        {422, "", -EINVAL},
        {429, ",\"retry_after\":3", -EAGAIN},
        {500, "", -EAGAIN},
        {503, ",\"retry_after\":1", -EAGAIN},
        {410, "", -ESTALE},
    };
    struct kx_k8s *c = incluster_client(fk.token);
    struct kx_k8s_result res;
    char err[512], body[256];

    (void)state;
    for (size_t i = 0; i < KX_ARRAY_SIZE(cases); i++) {
        snprintf(body, sizeof(body),
                 "{\"path\":\"/api/v1/pods\",\"status\":%d,\"message\":\"injected %d\"%s}",
                 cases[i].status, cases[i].status, cases[i].extra);
        ctl0("POST", "/_fake/faults", body);
        assert_int_equal(
            kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, &res, err, sizeof(err)),
            cases[i].want);
        assert_int_equal(res.status, cases[i].status);
        if (cases[i].status == 429) {
            assert_int_equal(res.retry_after, 3 * KX_NSEC_PER_SEC);
            assert_string_equal(err, "GET /api/v1/pods: 429 Too Many Requests: injected 429 "
                                     "(retry after 3 s)");
        }
        if (cases[i].status == 409)
            assert_string_equal(res.reason, "Conflict");
        kx_k8s_result_release(&res);
    }
    /* The faults were used up: back to normal. */
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)),
                     0);
    kx_k8s_free(c);
}

static void test_request_tls_trust(void **state)
{
    struct kx_k8s_opts o = fast_opts(KX_K8S_MODE_KUBECONFIG, NULL, tpath("kc-fake"));
    char yaml[16384], ca64[4096], cert64[4096], key64[1024], err[512];
    char *ca = slurp(fk.ca), *cert = slurp(fk.cert), *key = slurp(fk.key);
    struct kx_k8s *c;
    int64_t t0;

    (void)state;
    unsetenv("KUBERNETES_SERVICE_HOST");
    /* The wrong CA (file): verification fails, a configuration error. */
    snprintf(yaml, sizeof(yaml),
             KC_HEAD "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: %s\n"
                     "    certificate-authority: %s\n" KC_CTX
                     "users:\n- name: u\n  user: {token: %s}\n",
             fk.url, fk.other_ca, fk.token);
    write_file(tpath("kc-fake"), yaml);
    c = kx_k8s_new(&o, err, sizeof(err));
    assert_non_null(c);
    t0 = kx_monotonic_ns();
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)),
                     -EACCES);
    assert_true(kx_monotonic_ns() - t0 < 2 * KX_NSEC_PER_SEC);
    assert_non_null(strstr(err, "certificate"));
    assert_non_null(strstr(err, "TLS: check the cluster CA"));
    kx_k8s_free(c);

    /* The wrong CA as -data: same. The system trust store is not used. */
    free(ca);
    ca = slurp(fk.other_ca);
    b64(ca, ca64, sizeof(ca64));
    snprintf(yaml, sizeof(yaml),
             KC_HEAD "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: %s\n"
                     "    certificate-authority-data: %s\n" KC_CTX
                     "users:\n- name: u\n  user: {token: %s}\n",
             fk.url, ca64, fk.token);
    write_file(tpath("kc-fake"), yaml);
    c = kx_k8s_new(&o, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)),
                     -EACCES);
    kx_k8s_free(c);

    /* The right CA as -data and x509 client auth from -data, no token. */
    free(ca);
    ca = slurp(fk.ca);
    b64(ca, ca64, sizeof(ca64));
    b64(cert, cert64, sizeof(cert64));
    b64(key, key64, sizeof(key64));
    snprintf(yaml, sizeof(yaml),
             KC_HEAD "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: %s\n"
                     "    certificate-authority-data: %s\n" KC_CTX
                     "users:\n- name: u\n  user:\n    client-certificate-data: %s\n"
                     "    client-key-data: %s\n",
             fk.url, ca64, cert64, key64);
    write_file(tpath("kc-fake"), yaml);
    c = kx_k8s_new(&o, err, sizeof(err));
    assert_non_null(c);
    if (kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)) != 0)
        fail_msg("client cert from data: %s", err);
    kx_k8s_free(c);

    /* Client cert and key as files. */
    snprintf(yaml, sizeof(yaml),
             KC_HEAD "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: %s\n"
                     "    certificate-authority: %s\n" KC_CTX
                     "users:\n- name: u\n  user:\n    client-certificate: %s\n"
                     "    client-key: %s\n",
             fk.url, fk.ca, fk.cert, fk.key);
    write_file(tpath("kc-fake"), yaml);
    c = kx_k8s_new(&o, err, sizeof(err));
    assert_non_null(c);
    if (kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)) != 0)
        fail_msg("client cert from files: %s", err);
    kx_k8s_free(c);

    /* insecure-skip-tls-verify: no CA needed. */
    snprintf(yaml, sizeof(yaml),
             KC_HEAD "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: %s\n"
                     "    insecure-skip-tls-verify: true\n" KC_CTX
                     "users:\n- name: u\n  user: {token: %s}\n",
             fk.url, fk.token);
    write_file(tpath("kc-fake"), yaml);
    c = kx_k8s_new(&o, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)),
                     0);
    kx_k8s_free(c);
    free(ca);
    free(cert);
    free(key);
}

static int closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static void test_request_unreachable(void **state)
{
    struct kx_k8s_opts o = fast_opts(KX_K8S_MODE_INCLUSTER, tpath("sa"), NULL);
    struct kx_k8s_result res;
    char server[64], err[512];
    struct kx_k8s *c;
    int64_t t0;

    (void)state;
    sa_dir_for_fake(tpath("sa"), fk.token);
    snprintf(server, sizeof(server), "https://127.0.0.1:%d", closed_port());
    o.server = server;
    c = kx_k8s_new(&o, err, sizeof(err));
    assert_non_null(c);
    t0 = kx_monotonic_ns();
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, &res, err, sizeof(err)),
                     -EAGAIN);
    assert_true(kx_monotonic_ns() - t0 < KX_NSEC_PER_SEC);
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(err, "Connection refused"));
    assert_non_null(strstr(err, server));
    kx_k8s_free(c);

    /* The server accepts but never answers (connection closed): -EAGAIN. */
    c = incluster_client(fk.token);
    ctl0("POST", "/_fake/down", "{\"mode\":\"close\"}");
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, &res, err, sizeof(err)),
                     -EAGAIN);
    kx_k8s_result_release(&res);
    ctl0("POST", "/_fake/down", "{\"mode\":\"503\"}");
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, &res, err, sizeof(err)),
                     -EAGAIN);
    assert_int_equal(res.status, 503);
    assert_non_null(strstr(err, "503 Service Unavailable"));
    kx_k8s_result_release(&res);
    ctl0("POST", "/_fake/up", NULL);
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)),
                     0);
    /* Cancelled: everything after returns at once. */
    kx_k8s_cancel(c);
    assert_true(kx_k8s_cancelled(c));
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)),
                     -ECANCELED);
    kx_k8s_free(c);
}

/* How many logged API requests got a 401. */
static int count_401(void)
{
    cJSON *all = ctl("GET", "/_fake/requests", NULL), *r;
    int n = 0;

    cJSON_ArrayForEach(r, all)
    {
        cJSON *st = cJSON_GetObjectItem(r, "status");

        n += cJSON_IsNumber(st) && st->valueint == 401;
    }
    cJSON_Delete(all);
    return n;
}

static void test_token_rotation(void **state)
{
    struct kx_k8s_opts o = fast_opts(KX_K8S_MODE_INCLUSTER, tpath("sa"), NULL);
    struct kx_k8s *c;
    char err[512];

    (void)state;
    sa_dir_for_fake(tpath("sa"), fk.token);
    o.token_reload = 300 * MS;
    c = kx_k8s_new(&o, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)),
                     0);

    /* Rotated before the reload interval: the 401 makes the client re-read
     * the file and retry once, transparently. */
    ctl0("POST", "/_fake/token", "{\"token\":\"second-token\"}");
    write_file(tpath("sa/token"), "second-token\n");
    ctl0("DELETE", "/_fake/requests", NULL);
    if (kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)) != 0)
        fail_msg("after rotation: %s", err);
    assert_int_equal(count_401(), 1);

    /* After the reload interval the new file is used up front: no 401. */
    ctl0("POST", "/_fake/token", "{\"token\":\"third-token\"}");
    write_file(tpath("sa/token"), "third-token\n");
    usleep(350 * 1000);
    ctl0("DELETE", "/_fake/requests", NULL);
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_int_equal(count_401(), 0);

    /* Rotated server-side only: still a 401, reported as such. */
    ctl0("POST", "/_fake/token", "{\"token\":\"fourth-token\"}");
    assert_int_equal(kx_k8s_request(c, "GET", "/api/v1/pods", NULL, NULL, NULL, err, sizeof(err)),
                     -EACCES);
    kx_k8s_free(c);
}

/* ---- watch ------------------------------------------------------------------------ */

struct rec {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n[KX_K8S_FAILED + 1]; /* events per type */
    char log[512][96];        /* "ADDED shop/web-1" */
    int nlog;
    int last_error;
    char last_msg[768];
    size_t last_count;
    char rv[64];
};

static void rec_on_event(void *ctx, const struct kx_k8s_event *ev)
{
    struct rec *r = ctx;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(ev->object, "metadata");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");

    pthread_mutex_lock(&r->lock);
    r->n[ev->type]++;
    if (r->nlog < (int)KX_ARRAY_SIZE(r->log))
        snprintf(r->log[r->nlog++], sizeof(r->log[0]), "%s %s/%s", kx_k8s_event_name(ev->type),
                 cJSON_IsString(ns) ? ns->valuestring : "-",
                 cJSON_IsString(name) ? name->valuestring : "-");
    if (ev->type == KX_K8S_FAILED) {
        r->last_error = ev->error;
        snprintf(r->last_msg, sizeof(r->last_msg), "%s", ev->message);
        assert_true(ev->retry_in > 0);
    }
    if (ev->type == KX_K8S_SYNCED)
        r->last_count = ev->count;
    snprintf(r->rv, sizeof(r->rv), "%s", ev->resource_version ? ev->resource_version : "");
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static bool rec_has_locked(struct rec *r, const char *entry)
{
    for (int i = 0; i < r->nlog; i++) {
        if (strcmp(r->log[i], entry) == 0)
            return true;
    }
    return false;
}

/* Waits until events of type reach count (entry == NULL) or entry is logged. */
static void rec_wait(struct rec *r, enum kx_k8s_event_type type, int count, const char *entry)
{
    int64_t deadline = kx_monotonic_ns() + WAIT_NS;
    bool ok;

    pthread_mutex_lock(&r->lock);
    for (;;) {
        struct timespec ts;
        int64_t now = kx_now_ns() + 20 * MS;

        ok = entry ? rec_has_locked(r, entry) : r->n[type] >= count;
        if (ok || kx_monotonic_ns() > deadline)
            break;
        ts.tv_sec = now / KX_NSEC_PER_SEC;
        ts.tv_nsec = now % KX_NSEC_PER_SEC;
        pthread_cond_timedwait(&r->cond, &r->lock, &ts);
    }
    pthread_mutex_unlock(&r->lock);
    if (!ok)
        fail_msg("timed out waiting for %s (%s x%d); last failure: %s", entry ? entry : "event",
                 kx_k8s_event_name(type), count, r->last_msg);
}

static int rec_count(struct rec *r, enum kx_k8s_event_type type)
{
    int n;

    pthread_mutex_lock(&r->lock);
    n = r->n[type];
    pthread_mutex_unlock(&r->lock);
    return n;
}

static bool rec_has(struct rec *r, const char *entry)
{
    bool b;

    pthread_mutex_lock(&r->lock);
    b = rec_has_locked(r, entry);
    pthread_mutex_unlock(&r->lock);
    return b;
}

struct watcher {
    struct kx_k8s *c;
    struct kx_k8s_watch_opts o;
    pthread_t thread;
    int rc;
    struct rec rec;
};

static void *watcher_main(void *arg)
{
    struct watcher *w = arg;

    w->rc = kx_k8s_watch(w->c, &w->o);
    return NULL;
}

static struct watcher *watcher_start(struct kx_k8s *c, const char *query, size_t max_event)
{
    struct watcher *w = calloc(1, sizeof(*w));

    assert_non_null(w);
    pthread_mutex_init(&w->rec.lock, NULL);
    pthread_cond_init(&w->rec.cond, NULL);
    w->c = c;
    w->o = (struct kx_k8s_watch_opts){.path = "/api/v1/pods",
                                      .query = query,
                                      .cb = rec_on_event,
                                      .ctx = &w->rec,
                                      .max_event = max_event,
                                      .page_size = 2};
    w->rc = -1;
    assert_int_equal(pthread_create(&w->thread, NULL, watcher_main, w), 0);
    return w;
}

/* Cancels and joins; returns how long that took. */
static int64_t watcher_stop(struct watcher *w)
{
    int64_t t0 = kx_monotonic_ns(), took;

    kx_k8s_cancel(w->c);
    pthread_join(w->thread, NULL);
    took = kx_monotonic_ns() - t0;
    if (getenv("KX_TEST_VERBOSE"))
        fprintf(stderr, "watch stop took %lld us\n", (long long)(took / 1000));
    assert_int_equal(w->rc, 0);
    kx_k8s_free(w->c);
    pthread_mutex_destroy(&w->rec.lock);
    pthread_cond_destroy(&w->rec.cond);
    free(w);
    return took;
}

static void test_watch_events(void **state)
{
    struct watcher *w;
    cJSON *reqs, *r;
    bool saw_watch = false;
    int64_t took;

    (void)state;
    add_pod("shop", "web-1", UID_1, "node-a", NULL, NULL, NULL);
    add_pod("shop", "web-0", "0000-w0", "node-a", NULL, NULL, NULL);
    add_pod("shop", "api-1", "0000-a1", "node-a", NULL, NULL, NULL);
    add_pod("shop", "db-1", UID_2, "node-b", NULL, NULL, NULL);
    w = watcher_start(incluster_client(fk.token), "fieldSelector=spec.nodeName%3Dnode-a", 0);
    rec_wait(&w->rec, KX_K8S_WATCHING, 1, NULL);
    assert_int_equal(rec_count(&w->rec, KX_K8S_LIST_BEGIN), 1);
    assert_int_equal(rec_count(&w->rec, KX_K8S_SYNCED), 1);
    assert_int_equal(w->rec.last_count, 3); /* two pages of 2 */
    assert_true(rec_has(&w->rec, "ADDED shop/web-1"));
    assert_true(rec_has(&w->rec, "ADDED shop/api-1"));
    assert_false(rec_has(&w->rec, "ADDED shop/db-1"));

    add_pod("shop", "web-2", UID_3, "node-a", "{\"v\":\"1\"}", NULL, NULL);
    add_pod("shop", "db-2", "0000-d2", "node-b", NULL, NULL, NULL);
    rec_wait(&w->rec, 0, 0, "ADDED shop/web-2");
    add_pod("shop", "web-2", UID_3, "node-a", "{\"v\":\"2\"}", NULL, NULL);
    rec_wait(&w->rec, 0, 0, "MODIFIED shop/web-2");
    ctl0("POST", "/_fake/bookmark", NULL);
    rec_wait(&w->rec, KX_K8S_BOOKMARK, 1, NULL);
    del_pod("shop", "web-1");
    rec_wait(&w->rec, 0, 0, "DELETED shop/web-1");
    /* Moving out of the selector looks like a delete. */
    add_pod("shop", "web-2", UID_3, "node-b", NULL, NULL, NULL);
    rec_wait(&w->rec, 0, 0, "DELETED shop/web-2");
    assert_false(rec_has(&w->rec, "ADDED shop/db-2"));
    assert_int_equal(rec_count(&w->rec, KX_K8S_FAILED), 0);
    assert_int_equal(rec_count(&w->rec, KX_K8S_LIST_BEGIN), 1);

    reqs = ctl("GET", "/_fake/requests", NULL);
    cJSON_ArrayForEach(r, reqs)
    {
        const char *q = cJSON_GetObjectItem(r, "query")->valuestring;

        assert_non_null(strstr(q, "fieldSelector=spec.nodeName%3Dnode-a"));
        if (strstr(q, "watch=1")) {
            saw_watch = true;
            assert_non_null(strstr(q, "allowWatchBookmarks=true"));
            assert_non_null(strstr(q, "resourceVersion="));
            assert_non_null(strstr(q, "timeoutSeconds=300"));
        } else {
            assert_non_null(strstr(q, "limit=2"));
        }
    }
    assert_true(saw_watch);
    cJSON_Delete(reqs);

    took = watcher_stop(w);
    assert_true(took < KX_NSEC_PER_SEC);
}

static void test_watch_resume_and_410(void **state)
{
    struct watcher *w;
    int lists;

    (void)state;
    add_pod("shop", "web-1", UID_1, "node-a", NULL, NULL, NULL);
    w = watcher_start(incluster_client(fk.token), NULL, 0);
    rec_wait(&w->rec, KX_K8S_WATCHING, 1, NULL);

    /* Cut while the server is down, a pod added meanwhile: the watch
     * resumes from its resourceVersion and gets the missed event, no list. */
    ctl0("POST", "/_fake/down", "{\"mode\":\"close\"}");
    rec_wait(&w->rec, KX_K8S_FAILED, 1, NULL);
    assert_int_equal(w->rec.last_error, -EAGAIN);
    add_pod("shop", "web-3", UID_3, "node-a", NULL, NULL, NULL);
    ctl0("POST", "/_fake/up", NULL);
    rec_wait(&w->rec, 0, 0, "ADDED shop/web-3");
    rec_wait(&w->rec, KX_K8S_WATCHING, 2, NULL);
    assert_int_equal(rec_count(&w->rec, KX_K8S_LIST_BEGIN), 1);

    /* A clean end (timeoutSeconds) resumes at once, without a failure. */
    lists = rec_count(&w->rec, KX_K8S_FAILED);
    ctl0("POST", "/_fake/watches/end", NULL);
    rec_wait(&w->rec, KX_K8S_WATCHING, 3, NULL);
    assert_int_equal(rec_count(&w->rec, KX_K8S_FAILED), lists);

    /* Compacted past our version: an ERROR 410 event -> a new list. */
    ctl0("POST", "/_fake/compact", NULL);
    ctl0("POST", "/_fake/watches/drop", NULL);
    rec_wait(&w->rec, KX_K8S_SYNCED, 2, NULL);
    assert_int_equal(rec_count(&w->rec, KX_K8S_LIST_BEGIN), 2);
    assert_int_equal(w->rec.last_count, 2);
    rec_wait(&w->rec, KX_K8S_WATCHING, 4, NULL);

    /* The same as an HTTP 410 on the watch request. */
    ctl0("POST", "/_fake/config", "{\"watch_expired\":\"status\"}");
    ctl0("POST", "/_fake/compact", NULL);
    ctl0("POST", "/_fake/watches/drop", NULL);
    rec_wait(&w->rec, KX_K8S_SYNCED, 3, NULL);
    assert_int_equal(rec_count(&w->rec, KX_K8S_LIST_BEGIN), 3);
    del_pod("shop", "web-3");
    rec_wait(&w->rec, 0, 0, "DELETED shop/web-3");
    assert_true(watcher_stop(w) < KX_NSEC_PER_SEC);
}

static void test_watch_oversize_event(void **state)
{
    struct watcher *w;
    char labels[4096];
    size_t o = 0;

    (void)state;
    w = watcher_start(incluster_client(fk.token), NULL, 1024);
    rec_wait(&w->rec, KX_K8S_WATCHING, 1, NULL);
    o += (size_t)snprintf(labels + o, sizeof(labels) - o, "{");
    for (int i = 0; i < 20; i++)
        o += (size_t)snprintf(labels + o, sizeof(labels) - o, "%s\"k%02d\":\"%060d\"", i ? "," : "",
                              i, i);
    snprintf(labels + o, sizeof(labels) - o, "}");
    add_pod("shop", "big", UID_1, "node-a", labels, NULL, NULL);
    /* The line is refused (not a crash, not a truncated object), and a
     * re-list brings the pod in anyway: list pages are not event lines. */
    rec_wait(&w->rec, KX_K8S_FAILED, 1, NULL);
    assert_int_equal(w->rec.last_error, -EBADMSG);
    assert_non_null(strstr(w->rec.last_msg, "watch event larger than 1024 bytes"));
    rec_wait(&w->rec, KX_K8S_SYNCED, 2, NULL);
    assert_true(rec_has(&w->rec, "ADDED shop/big"));
    add_pod("shop", "small", UID_2, "node-a", NULL, NULL, NULL);
    rec_wait(&w->rec, 0, 0, "ADDED shop/small");
    assert_true(watcher_stop(w) < KX_NSEC_PER_SEC);
}

static void test_watch_stop_prompt(void **state)
{
    struct kx_k8s_opts o = fast_opts(KX_K8S_MODE_INCLUSTER, tpath("sa"), NULL);
    struct watcher *w;
    char err[512];
    int64_t took;

    (void)state;
    /* Idle in an open watch. */
    w = watcher_start(incluster_client(fk.token), NULL, 0);
    rec_wait(&w->rec, KX_K8S_WATCHING, 1, NULL);
    usleep(100 * 1000);
    took = watcher_stop(w);
    assert_true(took < 200 * MS);

    /* Asleep in a long backoff. */
    sa_dir_for_fake(tpath("sa"), fk.token);
    o.backoff_min = o.backoff_max = 10 * KX_NSEC_PER_SEC;
    ctl0("POST", "/_fake/down", "{\"mode\":\"503\"}");
    w = watcher_start(kx_k8s_new(&o, err, sizeof(err)), NULL, 0);
    rec_wait(&w->rec, KX_K8S_FAILED, 1, NULL);
    assert_int_equal(w->rec.last_error, -EAGAIN);
    assert_non_null(strstr(w->rec.last_msg, "503 Service Unavailable"));
    took = watcher_stop(w);
    assert_true(took < 200 * MS);

    /* Failing for good (RBAC): keeps retrying with backoff, reports it. */
    ctl0("POST", "/_fake/up", NULL);
    ctl0("POST", "/_fake/rbac", "{\"deny\":[{\"verb\":\"list\"}]}");
    w = watcher_start(incluster_client(fk.token), NULL, 0);
    rec_wait(&w->rec, KX_K8S_FAILED, 3, NULL);
    assert_int_equal(w->rec.last_error, -EACCES);
    assert_non_null(strstr(w->rec.last_msg, "cannot list resource \"pods\""));
    ctl0("DELETE", "/_fake/rbac", NULL);
    rec_wait(&w->rec, KX_K8S_SYNCED, 1, NULL);
    assert_true(watcher_stop(w) < 200 * MS);
    assert_int_equal(kx_k8s_watch(NULL, NULL), -EINVAL);
}

/* ---- the pod cache against the fake ------------------------------------------ */

/* Polls until lookup(uid, cid) returns want. */
static void pods_wait(struct kx_pods *p, const char *uid, const char *cid, int want)
{
    int64_t deadline = kx_monotonic_ns() + WAIT_NS;
    struct kx_pod_info pi;

    while (kx_pods_lookup(p, uid, cid, &pi) != want) {
        if (kx_monotonic_ns() > deadline)
            fail_msg("pod %s / %s: lookup never returned %d", uid ? uid : "-", cid ? cid : "-",
                     want);
        usleep(5000);
    }
}

static void pods_wait_stats(struct kx_pods *p, bool synced, bool unreachable)
{
    int64_t deadline = kx_monotonic_ns() + WAIT_NS;
    struct kx_pods_stats st;

    for (;;) {
        kx_pods_stats(p, &st);
        if (st.synced == synced && st.unreachable == unreachable)
            return;
        if (kx_monotonic_ns() > deadline)
            fail_msg("pods: want synced=%d unreachable=%d, have %d %d", synced, unreachable,
                     st.synced, st.unreachable);
        usleep(5000);
    }
}

static void test_pods_live(void **state)
{
    struct kx_k8s_opts o = fast_opts(KX_K8S_MODE_INCLUSTER, tpath("sa"), NULL);
    struct kx_pod_info pi;
    struct kx_pods *p;
    char err[512];
    int64_t t0;

    (void)state;
    sa_dir_for_fake(tpath("sa"), fk.token);
    add_pod("shop", "web-1", UID_1, "node-a", "{\"app\":\"web\"}", "nginx", CID_A);
    add_pod("shop", "db-1", UID_2, "node-b", NULL, "pg", CID_B);

    assert_null(kx_pods_start(&o, "", err, sizeof(err)));
    assert_int_equal(errno, EINVAL);
    o.mode = KX_K8S_MODE_OFF;
    assert_null(kx_pods_start(&o, "node-a", err, sizeof(err)));
    assert_int_equal(errno, ENOTSUP);
    o.mode = KX_K8S_MODE_INCLUSTER;

    p = kx_pods_start(&o, "node-a", err, sizeof(err));
    assert_non_null(p);
    pods_wait_stats(p, true, false);
    assert_int_equal(kx_pods_lookup(p, UID_1, CID_A, &pi), 1);
    assert_string_equal(pi.ns, "shop");
    assert_string_equal(pi.name, "web-1");
    assert_string_equal(pi.container, "nginx");
    assert_string_equal(pi.labels, "app:web");
    assert_int_equal(kx_pods_lookup(p, UID_2, CID_B, &pi), 0); /* another node's */

    add_pod("shop", "web-2", UID_3, "node-a", NULL, "php", CID_C);
    pods_wait(p, NULL, CID_C, 1);
    assert_int_equal(kx_pods_lookup(p, NULL, CID_C, &pi), 1);
    assert_string_equal(pi.name, "web-2");
    assert_string_equal(pi.container, "php");
    del_pod("shop", "web-1");
    pods_wait(p, UID_1, NULL, 0);

    t0 = kx_monotonic_ns();
    kx_pods_free(p);
    assert_true(kx_monotonic_ns() - t0 < KX_NSEC_PER_SEC);
    assert_int_equal(open_watches() >= 0, 1);
}

static void test_pods_api_down(void **state)
{
    struct kx_k8s_opts o = fast_opts(KX_K8S_MODE_INCLUSTER, tpath("sa"), NULL);
    struct kx_pods_stats st;
    struct kx_pod_info pi;
    struct kx_pods *p;
    char err[512];
    int64_t t0, worst = 0;
    uint64_t failures;

    (void)state;
    sa_dir_for_fake(tpath("sa"), fk.token);
    add_pod("shop", "web-1", UID_1, "node-a", NULL, "nginx", CID_A);
    ctl0("POST", "/_fake/down", "{\"mode\":\"close\"}");

    p = kx_pods_start(&o, "node-a", err, sizeof(err));
    assert_non_null(p);
    /* Lookups never wait for the API. */
    for (int i = 0; i < 2000; i++) {
        int64_t t = kx_monotonic_ns();

        assert_int_equal(kx_pods_lookup(p, UID_1, CID_A, &pi), 0);
        t = kx_monotonic_ns() - t;
        worst = t > worst ? t : worst;
    }
    if (getenv("KX_TEST_VERBOSE"))
        fprintf(stderr, "worst lookup while the API is down: %lld us\n", (long long)(worst / 1000));
    assert_true(worst < 50 * MS);
    pods_wait_stats(p, false, true);
    kx_pods_stats(p, &st);
    failures = st.failures;
    usleep(300 * 1000);
    kx_pods_stats(p, &st);
    assert_true(st.failures > failures); /* still retrying */
    assert_true(st.failures < 20);       /* with backoff, not a busy loop */

    ctl0("POST", "/_fake/up", NULL);
    pods_wait_stats(p, true, false);
    assert_int_equal(kx_pods_lookup(p, UID_1, CID_A, &pi), 1);

    /* Down again after a sync: the cached pods still answer (stale). */
    ctl0("POST", "/_fake/down", "{\"mode\":\"close\"}");
    pods_wait_stats(p, true, true);
    t0 = kx_monotonic_ns();
    assert_int_equal(kx_pods_lookup(p, UID_1, CID_A, &pi), 1);
    assert_true(kx_monotonic_ns() - t0 < 50 * MS);
    add_pod("shop", "web-2", UID_3, "node-a", NULL, "php", CID_C);
    ctl0("POST", "/_fake/up", NULL);
    pods_wait(p, UID_3, CID_C, 1);
    pods_wait_stats(p, true, false);

    t0 = kx_monotonic_ns();
    kx_pods_free(p);
    t0 = kx_monotonic_ns() - t0;
    if (getenv("KX_TEST_VERBOSE"))
        fprintf(stderr, "kx_pods_free took %lld us\n", (long long)(t0 / 1000));
    assert_true(t0 < KX_NSEC_PER_SEC);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_mode_parse),
        cmocka_unit_test(test_settings_table),
        cmocka_unit_test(test_kubeconfig_contexts),
        cmocka_unit_test(test_kubeconfig_data_and_token_file),
        cmocka_unit_test(test_kubeconfig_errors),
        cmocka_unit_test(test_config_auto_and_incluster),
        cmocka_unit_test(test_status_message),
        cmocka_unit_test(test_classify_and_escape),
        cmocka_unit_test(test_pods_cache_unit),
        cmocka_unit_test(test_pods_cache_bounded),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test_setup(test_request_incluster_tls, fake_reset),
        cmocka_unit_test_setup(test_request_auth_failures, fake_reset),
        cmocka_unit_test_setup(test_request_classification, fake_reset),
        cmocka_unit_test_setup(test_request_tls_trust, fake_reset),
        cmocka_unit_test_setup(test_request_unreachable, fake_reset),
        cmocka_unit_test_setup(test_token_rotation, fake_reset),
        cmocka_unit_test_setup(test_watch_events, fake_reset),
        cmocka_unit_test_setup(test_watch_resume_and_410, fake_reset),
        cmocka_unit_test_setup(test_watch_oversize_event, fake_reset),
        cmocka_unit_test_setup(test_watch_stop_prompt, fake_reset),
        cmocka_unit_test_setup(test_pods_live, fake_reset),
        cmocka_unit_test_setup(test_pods_api_down, fake_reset),
    };
    int rc;

    kx_log_init("test_k8s", getenv("KX_TEST_VERBOSE") ? KX_LOG_DEBUG : KX_LOG_ERROR, false);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    if (!mkdtemp(tmpdir))
        return 1;
    rc = cmocka_run_group_tests_name("k8s_pure", pure, NULL, NULL);
    rc += cmocka_run_group_tests_name("k8s_live", live, fake_start, fake_stop);
    fake_kill();
    rm_rf(tmpdir);
    curl_global_cleanup();
    return rc;
}
