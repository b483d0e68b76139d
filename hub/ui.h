/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ui.h - the web UI's files (hub/ui/), built into the binary by
 * scripts/embed-ui.sh, or read from http.ui_dir for development.
 */
#ifndef KX_HUB_UI_H
#define KX_HUB_UI_H

#include <stddef.h>

#include "http.h"

struct kx_ui_file {
    const char *name;          /* "index.html", "app.js" */
    const unsigned char *data; /* NUL-terminated */
    size_t len;
};

/* Generated: every file of hub/ui, ended by an entry with name NULL. */
extern const struct kx_ui_file kx_ui_files[];

/*
 * Answers with the UI file name ("login.html") with its content type: from
 * dir when dir is set, else the built-in copy. 0, or -ENOENT after a 404.
 * Any thread; everything borrowed.
 */
int kx_ui_file(const char *dir, const char *name, int status, struct kx_http_resp *r);

/* GET /ui, /ui/, /ui/<file>: the file (index.html for the directory). */
void kx_ui_serve(const char *dir, const struct kx_http_req *req, struct kx_http_resp *r);

#endif
