/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_alert.c - libFuzzer target for the alert parser: any byte string must
 * either parse into an alert that survives a serialize/parse round trip with
 * the same rule, priority, time and uuid, or be rejected with a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[KX_ALERT_ERR_LEN] = "";
    struct kx_alert *a = kx_alert_parse((const char *)data, size, err, sizeof(err));
    if (!a) {
        if (!err[0])
            abort(); /* a rejection must say why */
        return 0;
    }
    char *json = kx_alert_to_json(a);
    if (json) {
        struct kx_alert *b = kx_alert_parse(json, strlen(json), err, sizeof(err));
        if (!b || strcmp(a->rule, b->rule) || a->priority != b->priority ||
            a->time_ns != b->time_ns || strcmp(a->uuid, b->uuid))
            abort();
        char buf[128];
        kx_alert_field_str(b, "container.id", buf, sizeof(buf));
        kx_alert_free(b);
        free(json);
    }
    kx_alert_free(a);
    return 0;
}
