/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dedupe_state.c - libFuzzer target for the dedupe window record read
 * back from NATS KV (another replica, or a person with the nats CLI, may
 * have written anything there): parse, decide and aggregate must hold up.
 */
#include <stdint.h>
#include <stdlib.h>

#include "dedupe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kx_dedupe_state st;
    bool close_prev;

    if (kx_dedupe_state_parse((const char *)data, size, &st))
        return 0;
    kx_dedupe_decide(&st, "fuzz-uuid", st.start, 60 * KX_NSEC_PER_SEC, &close_prev);
    struct kx_buf b;
    kx_buf_init(&b, 4 << 20);
    if (kx_dedupe_state_format(&st, &b) == 0) {
        struct kx_dedupe_state again;
        if (kx_dedupe_state_parse(b.data, b.len, &again) || again.count != st.count ||
            again.start != st.start || again.open != st.open)
            abort();
    }
    kx_buf_free(&b);
    kx_alert_free(kx_dedupe_aggregate(&st, 60 * KX_NSEC_PER_SEC));
    return 0;
}
