/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_kubeconfig.c - libFuzzer target for the kubeconfig resolver
 * (kx_k8s_kubeconfig_parse) and the Status-body formatter: any input is a
 * configuration or an error message, never a crash or a leak.
 *
 * Paths named in an input (certificate-authority, tokenFile, ...) are only
 * checked with access() or read with a bound, but a tokenFile on a FIFO or
 * a character device would block, so inputs naming /dev, /proc or /sys are
 * skipped.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "k8s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kx_diag d = {0};
    struct kx_k8s_config cfg;
    struct kx_config_doc *doc;
    char err[512], msg[256], reason[32];
    char *text = malloc(size + 1);

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    /* Also as a Status body, with its exact length (may hold NULs). */
    kx_k8s_status_message(403, (const char *)data, size, msg, sizeof(msg), reason, sizeof(reason));
    if (strstr(text, "/dev") || strstr(text, "/proc") || strstr(text, "/sys")) {
        free(text);
        return 0;
    }
    doc = kx_config_load_string("/fuzz/kubeconfig", text, &d);
    if (doc) {
        if (kx_k8s_kubeconfig_parse(doc, NULL, &cfg, err, sizeof(err)) == 0) {
            if (!cfg.server || !cfg.source || !cfg.ns)
                abort();
            kx_k8s_config_release(&cfg);
        } else if (err[0] == '\0' || cfg.server) {
            abort(); /* an error says why, and leaves nothing behind */
        }
        /* A context named by the caller instead of current-context. */
        if (kx_k8s_kubeconfig_parse(doc, "c", &cfg, err, sizeof(err)) == 0)
            kx_k8s_config_release(&cfg);
    }
    kx_config_free(doc);
    kx_diag_free(&d);
    free(text);
    return 0;
}
