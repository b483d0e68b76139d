/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_syslog.c - the syslog output (outputs/syslog.c): the pure formatter
 * (RFC 5424 / 3164 headers, JSON / CEF / LEEF bodies and their escaping,
 * severity mapping, framing, cutting), the settings checks at init, and
 * delivery over UDP and TCP to sockets of the test's own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "config.h"
#include "log.h"
#include "outputs.h"
#include "syslogout.h"
#include "util.h"

extern const struct kx_output_ops kx_output_syslog; /* outputs/syslog.c */

/* Everything CEF and LEEF must escape: pipes, backslashes, equals signs,
 * LF and CR, in the rule (a header field) and in extension values. */
static const char nasty_json[] =
    "{\"uuid\":\"5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69\",\"time\":\"2026-11-22T10:01:02."
    "123456789Z\","
    "\"priority\":\"Critical\",\"rule\":\"Pipe | back\\\\slash = eq\\nnl\",\"source\":\"syscall\","
    "\"hostname\":\"node-a\",\"output\":\"out a=b | c\\\\d\\nline2\\r\",\"tags\":[\"t1\",\"t2\"],"
    "\"output_fields\":{\"proc.cmdline\":\"sh -c \\\"x=1|y\\\"\",\"proc.aname[2]\":\"bash\","
    "\"proc.pid\":42,\"fd.name\":null,\"k.b\":true}}";

#define UUID "5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69"
#define HDR5424 "<130>1 2026-11-22T10:01:02.123456Z node-a klaxon - syscall - "

static struct kx_alert *parse(const char *json)
{
    char err[KX_ALERT_ERR_LEN] = "";
    struct kx_alert *a = kx_alert_parse(json, strlen(json), err, sizeof(err));

    if (a == NULL)
        fail_msg("alert: %s", err);
    return a;
}

static struct kx_alert *simple(const char *prio, const char *time, const char *host,
                               const char *rule)
{
    char json[1024];

    snprintf(json, sizeof(json),
             "{\"uuid\":\"" UUID "\",\"time\":\"%s\",\"priority\":\"%s\",\"rule\":\"%s\","
             "\"source\":\"syscall\",%s%s%s\"output\":\"shell\",\"output_fields\":"
             "{\"proc.name\":\"bash\"}}",
             time, prio, rule, host ? "\"hostname\":\"" : "", host ? host : "", host ? "\"," : "");
    return parse(json);
}

/* Formats a with f into a static string. */
static const char *fmt(const struct kx_syslog_fmt *f, const struct kx_alert *a)
{
    static char out[8192];
    struct kx_buf b;

    kx_buf_init(&b, sizeof(out) - 1);
    assert_int_equal(kx_syslog_format(f, a, &b), 0);
    assert_non_null(b.data);
    assert_int_equal(strlen(b.data), b.len); /* no NUL inside */
    memcpy(out, b.data, b.len + 1);
    kx_buf_free(&b);
    return out;
}

static void test_severity(void **state)
{
    static const int cef[] = {10, 9, 8, 7, 6, 4, 3, 0};

    (void)state;
    for (int p = KX_PRI_EMERGENCY; p <= KX_PRI_DEBUG; p++) {
        assert_int_equal(kx_syslog_severity(p), p); /* emergency 0 .. debug 7 */
        assert_int_equal(kx_syslog_cef_severity(p), cef[p]);
    }
    /* more severe never maps lower */
    for (int p = KX_PRI_EMERGENCY; p < KX_PRI_DEBUG; p++)
        assert_true(kx_syslog_cef_severity(p) > kx_syslog_cef_severity(p + 1));

    assert_int_equal(kx_syslog_facility_parse("local0"), 16);
    assert_int_equal(kx_syslog_facility_parse("LOCAL7"), 23);
    assert_int_equal(kx_syslog_facility_parse("daemon"), 3);
    assert_int_equal(kx_syslog_facility_parse("authpriv"), 10);
    assert_int_equal(kx_syslog_facility_parse("kern"), 0);
    assert_int_equal(kx_syslog_facility_parse("4"), 4);
    assert_int_equal(kx_syslog_facility_parse("23"), 23);
    assert_int_equal(kx_syslog_facility_parse("24"), -EINVAL);
    assert_int_equal(kx_syslog_facility_parse("local8"), -EINVAL);
    assert_int_equal(kx_syslog_facility_parse(""), -EINVAL);
    assert_int_equal(kx_syslog_facility_parse("3x"), -EINVAL);
}

static void test_rfc5424_json(void **state)
{
    struct kx_syslog_fmt f = {.rfc = KX_SYSLOG_RFC5424, .body = KX_SYSLOG_JSON, .facility = 16};
    struct kx_alert *a = parse(nasty_json);
    const char *m = fmt(&f, a);
    cJSON *body;

    (void)state;
    /* PRI = local0 (16) * 8 + critical (2); version 1; microseconds, Z;
     * PROCID "-"; MSGID = the source; no structured data */
    assert_memory_equal(m, HDR5424, strlen(HDR5424));
    assert_null(strchr(m, '\n')); /* safe for LF framing too */
    assert_null(strchr(m, '\r'));
    body = cJSON_Parse(m + strlen(HDR5424));
    assert_non_null(body);
    assert_string_equal(cJSON_GetObjectItem(body, "uuid")->valuestring, UUID);
    assert_string_equal(cJSON_GetObjectItem(body, "rule")->valuestring,
                        "Pipe | back\\slash = eq\nnl"); /* JSON keeps it exactly */
    cJSON_Delete(body);

    /* facility and priority move PRI: daemon (3) * 8 + debug (7) = 31 */
    kx_alert_free(a);
    a = simple("Debug", "2026-01-05T00:00:00Z", "node-b", "r");
    f.facility = 3;
    f.appname = "my-app";
    m = fmt(&f, a);
    assert_memory_equal(m, "<31>1 2026-01-05T00:00:00.000000Z node-b my-app - syscall - {",
                        strlen("<31>1 2026-01-05T00:00:00.000000Z node-b my-app - syscall - {"));

    /* hostname: the setting wins; spaces are not allowed in the token */
    f.hostname = "relay 1";
    m = fmt(&f, a);
    assert_non_null(strstr(m, "Z relay_1 my-app "));
    kx_alert_free(a);

    /* no hostname in the alert: ours, else the NILVALUE */
    a = simple("Debug", "2026-01-05T00:00:00Z", NULL, "r");
    f.hostname = NULL;
    f.fallback_host = "hub-1";
    assert_non_null(strstr(fmt(&f, a), "Z hub-1 my-app - syscall - {"));
    f.fallback_host = NULL;
    assert_non_null(strstr(fmt(&f, a), "Z - my-app - syscall - {"));
    kx_alert_free(a);
}

static void test_rfc5424_structured_data(void **state)
{
    struct kx_syslog_fmt f = {
        .rfc = KX_SYSLOG_RFC5424, .body = KX_SYSLOG_JSON, .facility = 16, .sdid = "klaxon@32473"};
    struct kx_alert *a =
        simple("Warning", "2026-11-22T10:01:02.5Z", "node-a", "Say \\\"hi\\\" [x] \\\\ ok");
    const char *want = "<132>1 2026-11-22T10:01:02.500000Z node-a klaxon - syscall "
                       "[klaxon@32473 uuid=\"" UUID "\" rule=\"Say \\\"hi\\\" [x\\] \\\\ ok\" "
                       "priority=\"Warning\" source=\"syscall\"] {";

    (void)state;
    /* SD-PARAM values escape '"', '\' and ']' (RFC 5424 6.3.3) */
    assert_memory_equal(fmt(&f, a), want, strlen(want));
    kx_alert_free(a);
}

static void test_rfc3164(void **state)
{
    struct kx_syslog_fmt f = {.rfc = KX_SYSLOG_RFC3164, .body = KX_SYSLOG_JSON, .facility = 16};
    struct kx_alert *a = parse(nasty_json);
    const char *m = fmt(&f, a);

    (void)state;
    assert_memory_equal(m, "<130>Nov 22 10:01:02 node-a klaxon: {\"uuid\"",
                        strlen("<130>Nov 22 10:01:02 node-a klaxon: {\"uuid\""));
    kx_alert_free(a);

    /* the day is space-padded; the TAG stops at 32 and has no ':' or '[' */
    a = simple("Warning", "2026-11-02T03:04:05Z", "node-a", "r");
    f.facility = 3;
    f.appname = "app:x[1]";
    m = fmt(&f, a);
    assert_memory_equal(m, "<28>Nov  2 03:04:05 node-a app_x_1_: {",
                        strlen("<28>Nov  2 03:04:05 node-a app_x_1_: {"));
    f.appname = "a123456789012345678901234567890123456789";
    m = fmt(&f, a);
    assert_non_null(strstr(m, " node-a a1234567890123456789012345678901: {"));
    kx_alert_free(a);
}

static void test_cef_escaping(void **state)
{
    struct kx_syslog_fmt f = {.rfc = KX_SYSLOG_RFC5424, .body = KX_SYSLOG_CEF, .facility = 16};
    struct kx_alert *a = parse(nasty_json);
    struct kx_buf b;
    /* header: '|' and '\' escaped, the LF (not allowed there) a space;
     * extension: '\', '=', LF, CR escaped, '|' left alone; keys made safe */
    const char *want =
        HDR5424 "CEF:0|Klaxon|Klaxon|" KX_VERSION "|pipe_back_slash_eq_nl|"
                "Pipe \\| back\\\\slash = eq nl|8|"
                "rt=1795341662123 dvchost=node-a externalId=" UUID " cat=syscall "
                "cs1Label=priority cs1=Critical cs2Label=tags cs2=t1,t2 "
                "proc.cmdline=sh -c \"x\\=1|y\" proc.aname_2_=bash proc.pid=42 k.b=true "
                "msg=out a\\=b | c\\\\d\\nline2\\r";

    (void)state;
    assert_string_equal(fmt(&f, a), want);
    kx_alert_free(a);

    kx_buf_init(&b, 256);
    assert_int_equal(kx_syslog_cef_header(&b, "a|b\\c=d\r\ne\tf"), 0);
    assert_string_equal(b.data, "a\\|b\\\\c=d  e f");
    kx_buf_reset(&b);
    assert_int_equal(kx_syslog_cef_value(&b, "a|b\\c=d\r\ne\tf"), 0);
    assert_string_equal(b.data, "a|b\\\\c\\=d\\r\\ne f");
    kx_buf_reset(&b);
    assert_int_equal(kx_syslog_cef_value(&b, "\\="), 0);
    assert_string_equal(b.data, "\\\\\\=");
    kx_buf_free(&b);
}

static void test_leef(void **state)
{
    struct kx_syslog_fmt f = {.rfc = KX_SYSLOG_RFC5424, .body = KX_SYSLOG_LEEF, .facility = 16};
    struct kx_alert *a = parse(nasty_json);
    struct kx_buf b;
    /* LEEF 2.0, tab delimiter declared as x09; the header carries only
     * constants and the slug; values lose tabs, CR and LF (no escapes in
     * LEEF), keep '=', '|' and '\' */
    const char *want =
        HDR5424 "LEEF:2.0|Klaxon|Klaxon|" KX_VERSION "|pipe_back_slash_eq_nl|x09|"
                "devTime=2026-11-22T10:01:02.123+0000\t"
                "devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ\tsev=8\tcat=syscall\t"
                "rule=Pipe | back\\slash = eq nl\tpriority=Critical\thostname=node-a\t"
                "uuid=" UUID "\ttags=t1,t2\tproc.cmdline=sh -c \"x=1|y\"\t"
                "proc.aname_2_=bash\tproc.pid=42\tk.b=true\tmsg=out a=b | c\\d line2 ";

    (void)state;
    assert_string_equal(fmt(&f, a), want);
    kx_alert_free(a);

    kx_buf_init(&b, 256);
    assert_int_equal(kx_syslog_leef_value(&b, "a\tb\r\nc=d|e"), 0);
    assert_string_equal(b.data, "a b  c=d|e");
    kx_buf_free(&b);
}

static void test_frame_and_truncate(void **state)
{
    struct kx_buf b;
    const char utf8[] = "ab\xc3\xa9\xe2\x82\xac"; /* "abé€": 2 + 2 + 3 bytes */

    (void)state;
    kx_buf_init(&b, 64);
    assert_int_equal(kx_syslog_frame(&b, "<1>1 x", 6, true), 0);
    assert_int_equal(kx_syslog_frame(&b, "<2>1 yz", 7, true), 0);
    assert_string_equal(b.data, "6 <1>1 x7 <2>1 yz");
    kx_buf_reset(&b);
    assert_int_equal(kx_syslog_frame(&b, "<1>1 x", 6, false), 0);
    assert_string_equal(b.data, "<1>1 x\n");
    /* a frame that does not fit leaves the buffer as it was */
    kx_buf_free(&b);
    kx_buf_init(&b, 10);
    assert_int_equal(kx_syslog_frame(&b, "<1>1 x", 6, true), 0);
    assert_int_equal(kx_syslog_frame(&b, "<1>1 x", 6, true), -E2BIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "6 <1>1 x");
    kx_buf_free(&b);

    assert_int_equal(kx_syslog_truncate(utf8, 7, 100), 7);
    assert_int_equal(kx_syslog_truncate(utf8, 7, 7), 7);
    assert_int_equal(kx_syslog_truncate(utf8, 7, 6), 4); /* not inside the euro sign */
    assert_int_equal(kx_syslog_truncate(utf8, 7, 5), 4);
    assert_int_equal(kx_syslog_truncate(utf8, 7, 4), 4);
    assert_int_equal(kx_syslog_truncate(utf8, 7, 3), 2); /* not inside the e-acute */
}

/* ------------------------------------------------ the plugin, configured */

struct inst {
    struct kx_config_doc *doc;
    struct kx_output out;
    struct kx_diag d;
    int rc;
};

static void inst_init(struct inst *in, const char *yaml)
{
    memset(in, 0, sizeof(*in));
    in->doc = kx_config_load_string("test.yaml", yaml, &in->d);
    assert_non_null(in->doc);
    in->out.ops = &kx_output_syslog;
    in->out.name = "sl";
    in->out.settings = calloc(1, kx_output_syslog.settings_size);
    in->rc = kx_config_apply(kx_output_syslog.opts, in->doc->root, in->out.settings, NULL, &in->d);
    if (in->rc == 0)
        in->rc = kx_output_syslog.init(&in->out, in->doc->root, &in->d);
}

static void inst_free(struct inst *in)
{
    kx_output_syslog.destroy(&in->out);
    kx_config_release(kx_output_syslog.opts, in->out.settings);
    free(in->out.settings);
    kx_config_free(in->doc);
    kx_diag_free(&in->d);
}

/* Init must fail with a diagnostic at the key's line that contains want. */
static void expect_config_error(const char *yaml, const char *where, const char *want)
{
    struct inst in;
    bool found = false;

    inst_init(&in, yaml);
    assert_int_equal(in.rc, -EINVAL);
    for (size_t i = 0; i < in.d.n; i++) {
        if (strstr(in.d.msgs[i], want) && strstr(in.d.msgs[i], where))
            found = true;
    }
    if (!found)
        fail_msg("no diagnostic \"%s\" at %s for:\n%s(got %zu, first: %s)", want, where, yaml,
                 in.d.n, in.d.n ? in.d.msgs[0] : "-");
    inst_free(&in);
}

static void test_config(void **state)
{
    struct inst in;

    (void)state;
    expect_config_error("port: 514\n", "test.yaml", "host");
    expect_config_error("host: h\nprotocol: sctp\n", "test.yaml:2", "protocol \"sctp\"");
    expect_config_error("host: h\nformat: xml\n", "test.yaml:2", "format \"xml\"");
    expect_config_error("host: h\nrfc: 5425\n", "test.yaml:2", "rfc \"5425\"");
    expect_config_error("host: h\nfacility: local9\n", "test.yaml:2", "facility \"local9\"");
    expect_config_error("host: h\nport: 70000\n", "test.yaml:2", "port 70000");
    expect_config_error("host: h\nappname: \"a b\"\n", "test.yaml:2", "appname");
    expect_config_error("host: h\nsdid: klaxon\n", "test.yaml:2", "sdid");
    expect_config_error("host: h\nframing: crlf\n", "test.yaml:2", "framing \"crlf\"");
    expect_config_error("host: h\nprotocol: udp\nmaxsize: 100KiB\n", "test.yaml:3", "maxsize");
    expect_config_error("host: h\nmaxsize: 100\n", "test.yaml:2", "maxsize");
    expect_config_error("host: h\ntimeout: 0s\n", "test.yaml:2", "timeout");
    expect_config_error("host: h\nprotocol: tls\nclientcert: /x.pem\n", "test.yaml:3",
                        "both clientcert and clientkey");
    expect_config_error("host: h\nprotocol: tcp\ncafile: /x.pem\n", "test.yaml:3",
                        "cafile is set but protocol is not tls");
    expect_config_error("host: h\nprotocol: tls\ncafile: /nonexistent/ca.pem\n", "test.yaml:3",
                        "cannot load cafile /nonexistent/ca.pem");

    /* the defaults are fine and nothing connects at init */
    inst_init(&in, "host: 127.0.0.1\n");
    assert_int_equal(in.rc, 0);
    inst_free(&in);
    inst_init(&in, "host: syslog.invalid\nprotocol: TLS\nformat: LEEF\nrfc: RFC3164\n"
                   "facility: 17\nsdid: klaxon@32473\nframing: lf\ncheckcert: false\n");
    assert_int_equal(in.rc, 0);
    inst_free(&in);
}

/* A loopback socket of the test's own: its port in *port. */
static int listen_on(int type, int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, type, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (type == SOCK_STREAM)
        assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Reads from fd until want octet-counted frames arrived (2 s at most);
 * checks each is a complete RFC 5424 message and returns how many came. */
static int read_frames(int fd, int want, char *last, size_t lastlen)
{
    static char buf[1 << 16];
    size_t have = 0;
    int got = 0;

    while (got < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char *s = buf, *sp, *end;
        ssize_t n;

        if (poll(&p, 1, 2000) <= 0)
            break;
        n = read(fd, buf + have, sizeof(buf) - have - 1);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        /* consume whole frames */
        while ((sp = memchr(s, ' ', have - (size_t)(s - buf)))) {
            unsigned long len = strtoul(s, &end, 10);

            assert_ptr_equal(end, sp);
            if ((size_t)(sp + 1 - buf) + len > have)
                break;
            assert_memory_equal(sp + 1, "<1", 2);
            snprintf(last, lastlen, "%.*s", (int)len, sp + 1);
            got++;
            s = sp + 1 + len;
        }
        memmove(buf, s, have - (size_t)(s - buf));
        have -= (size_t)(s - buf);
    }
    return got;
}

static void test_deliver_tcp(void **state)
{
    struct kx_alert *batch[3];
    char yaml[256], last[4096];
    struct inst in;
    int port, lfd, cfd;

    (void)state;
    lfd = listen_on(SOCK_STREAM, &port);
    snprintf(yaml, sizeof(yaml), "host: 127.0.0.1\nport: %d\nformat: cef\ntimeout: 2s\n", port);
    inst_init(&in, yaml);
    assert_int_equal(in.rc, 0);
    for (int i = 0; i < 3; i++)
        batch[i] = parse(nasty_json);

    /* the backlog completes the connect: deliver, then accept and read */
    assert_int_equal(kx_output_syslog.deliver(&in.out, batch, 3), 0);
    cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    assert_int_equal(read_frames(cfd, 3, last, sizeof(last)), 3);
    assert_non_null(strstr(last, "|Pipe \\| back\\\\slash = eq nl|8|rt="));
    assert_non_null(strstr(last, " msg=out a\\=b | c\\\\d\\nline2\\r"));

    /* the server closes the connection (a restart): the next batch
     * notices the FIN and reconnects instead of writing into the void */
    close(cfd);
    usleep(20000);
    assert_int_equal(kx_output_syslog.deliver(&in.out, batch, 1), 0);
    cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    assert_int_equal(read_frames(cfd, 1, last, sizeof(last)), 1);

    /* server gone: refused, retried by the core, with the reason */
    close(cfd);
    close(lfd);
    usleep(20000);
    assert_int_equal(kx_output_syslog.deliver(&in.out, batch, 1), -EAGAIN);
    assert_non_null(strstr(in.out.error, "cannot connect to 127.0.0.1:"));
    assert_non_null(strstr(in.out.error, "refused"));

    for (int i = 0; i < 3; i++)
        kx_alert_free(batch[i]);
    inst_free(&in);
}

static void test_deliver_tcp_lf_framing(void **state)
{
    struct kx_alert *batch[2];
    char yaml[256], buf[8192];
    struct inst in;
    int port, lfd, cfd;
    size_t have = 0;

    (void)state;
    lfd = listen_on(SOCK_STREAM, &port);
    snprintf(yaml, sizeof(yaml),
             "host: 127.0.0.1\nport: %d\nframing: non-transparent\n"
             "rfc: 3164\n",
             port);
    inst_init(&in, yaml);
    assert_int_equal(in.rc, 0);
    batch[0] = parse(nasty_json);
    batch[1] = parse(nasty_json);
    assert_int_equal(kx_output_syslog.deliver(&in.out, batch, 2), 0);
    cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    while (have < sizeof(buf) - 1) {
        struct pollfd p = {.fd = cfd, .events = POLLIN};
        ssize_t n;
        char *nl;

        if (poll(&p, 1, 2000) <= 0 || (n = read(cfd, buf + have, sizeof(buf) - 1 - have)) <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        if ((nl = strchr(buf, '\n')) && strchr(nl + 1, '\n'))
            break;
    }
    /* two lines, each a whole message: the JSON body keeps its LF escaped */
    assert_memory_equal(buf, "<130>Nov 22 10:01:02 node-a klaxon: {", 37);
    assert_non_null(strchr(buf, '\n'));
    assert_memory_equal(strchr(buf, '\n') + 1, "<130>Nov 22", 11);
    assert_int_equal(buf[have - 1], '\n');
    close(cfd);
    close(lfd);
    kx_alert_free(batch[0]);
    kx_alert_free(batch[1]);
    inst_free(&in);
}

static void test_deliver_udp(void **state)
{
    struct kx_alert *batch[2];
    char yaml[256], buf[70000];
    struct inst in;
    int port, fd, rc = 0;
    ssize_t n;

    (void)state;
    fd = listen_on(SOCK_DGRAM, &port);
    /* maxsize 480: the JSON alert is longer, so it is cut, not refused */
    snprintf(yaml, sizeof(yaml), "host: 127.0.0.1\nport: %d\nprotocol: udp\nmaxsize: 480\n", port);
    inst_init(&in, yaml);
    assert_int_equal(in.rc, 0);
    batch[0] = parse(nasty_json);
    batch[1] = simple("Notice", "2026-11-22T10:01:02Z", "node-a", "short");
    memset(buf, 'x', 1000);
    buf[1000] = '\0';
    assert_int_equal(kx_alert_set_str(batch[0], "long.field", buf), 0);
    assert_int_equal(kx_output_syslog.deliver(&in.out, batch, 2), 0);
    n = recv(fd, buf, sizeof(buf), 0);
    assert_int_equal(n, 480); /* one datagram per alert, no framing */
    assert_memory_equal(buf, HDR5424 "{", strlen(HDR5424) + 1);
    n = recv(fd, buf, sizeof(buf), 0);
    assert_true(n > 0 && n < 480);
    assert_memory_equal(buf, "<133>1 ", 7);

    /* nobody listening: ECONNREFUSED comes back on a later send */
    close(fd);
    for (int i = 0; i < 5 && rc == 0; i++)
        rc = kx_output_syslog.deliver(&in.out, batch, 2);
    assert_int_equal(rc, -EAGAIN);
    assert_non_null(strstr(in.out.error, "refused"));
    kx_alert_free(batch[0]);
    kx_alert_free(batch[1]);
    inst_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_severity),
        cmocka_unit_test(test_rfc5424_json),
        cmocka_unit_test(test_rfc5424_structured_data),
        cmocka_unit_test(test_rfc3164),
        cmocka_unit_test(test_cef_escaping),
        cmocka_unit_test(test_leef),
        cmocka_unit_test(test_frame_and_truncate),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_deliver_tcp),
        cmocka_unit_test(test_deliver_tcp_lf_framing),
        cmocka_unit_test(test_deliver_udp),
    };

    signal(SIGPIPE, SIG_IGN); /* as the hub does */
    kx_log_init("test_syslog", KX_LOG_ERROR, false);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
