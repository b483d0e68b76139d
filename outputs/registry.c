/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c - the one list of output types. Adding an output = its .c file,
 * one extern and one line in the table below, and its test.
 */
#include <string.h>
#include <strings.h>

#include "outputs.h"

/* Each defined in its own outputs/<name>.c. */
extern const struct kx_output_ops kx_output_console;
extern const struct kx_output_ops kx_output_file;
extern const struct kx_output_ops kx_output_webhook;
extern const struct kx_output_ops kx_output_slack;
extern const struct kx_output_ops kx_output_mattermost;
extern const struct kx_output_ops kx_output_rocketchat;
extern const struct kx_output_ops kx_output_discord;
extern const struct kx_output_ops kx_output_teams;
extern const struct kx_output_ops kx_output_telegram;
extern const struct kx_output_ops kx_output_googlechat;
extern const struct kx_output_ops kx_output_nats;
extern const struct kx_output_ops kx_output_opsgenie;
extern const struct kx_output_ops kx_output_splunk;
extern const struct kx_output_ops kx_output_elasticsearch;
extern const struct kx_output_ops kx_output_loki;
extern const struct kx_output_ops kx_output_pagerduty;
extern const struct kx_output_ops kx_output_alertmanager;
extern const struct kx_output_ops kx_output_smtp;
extern const struct kx_output_ops kx_output_syslog;
extern const struct kx_output_ops kx_output_kafka;

const struct kx_output_ops *const kx_output_registry[] = {
    &kx_output_console,
    &kx_output_file,
    &kx_output_webhook,
    &kx_output_slack,
    &kx_output_mattermost,
    &kx_output_rocketchat,
    &kx_output_discord,
    &kx_output_teams,
    &kx_output_telegram,
    &kx_output_googlechat,
    &kx_output_nats,
    &kx_output_opsgenie,
    &kx_output_splunk,
    &kx_output_elasticsearch,
    &kx_output_loki,
    &kx_output_pagerduty,
    &kx_output_alertmanager,
    &kx_output_smtp,
    &kx_output_syslog,
    &kx_output_kafka,
    NULL,
};

const struct kx_output_ops *kx_output_ops_find(const char *type)
{
    if (type == NULL)
        return NULL;
    for (size_t i = 0; kx_output_registry[i]; i++) {
        if (strcasecmp(kx_output_registry[i]->name, type) == 0)
            return kx_output_registry[i];
    }
    return NULL;
}
