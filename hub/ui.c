/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ui.c - serves the web UI's static files under /ui/. The files are plain
 * HTML, CSS and JavaScript (no build step); the data they show comes from
 * /api/v1 and /ws. Files carry no secrets, but they are only served to
 * authenticated clients like the rest (api.c checks before calling here).
 */
#include "ui.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define UI_FILE_MAX (4u << 20) /* a file from ui_dir larger than this is refused */

static const char *ui_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
    };
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < KX_ARRAY_SIZE(types); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* A file name we serve: letters, digits, '-', '_', '.', one level, no "..". */
static bool ui_name_ok(const char *name)
{
    if (name[0] == '\0' || name[0] == '.' || strlen(name) > 128)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

static int ui_not_found(struct kx_http_resp *r, const char *name)
{
    r->status = 404;
    r->content_type = "application/json";
    kx_buf_reset(&r->body);
    kx_buf_printf(&r->body, "{\"error\":\"no such UI file: %s\"}\n", name);
    return -ENOENT;
}

int kx_ui_file(const char *dir, const char *name, int status, struct kx_http_resp *r)
{
    if (!ui_name_ok(name))
        return ui_not_found(r, "(bad name)");
    if (dir && *dir) {
        char path[4096], chunk[16384];
        size_t n;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "rb");
        if (!f)
            return ui_not_found(r, name);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
            if (r->body.len + n > UI_FILE_MAX || kx_buf_append(&r->body, chunk, n) < 0) {
                fclose(f);
                r->status = 500;
                kx_buf_reset(&r->body);
                kx_buf_printf(&r->body, "{\"error\":\"cannot read UI file %s\"}\n", name);
                return -EIO;
            }
        }
        fclose(f);
    } else {
        const struct kx_ui_file *f = kx_ui_files;

        while (f->name && strcmp(f->name, name) != 0)
            f++;
        if (!f->name)
            return ui_not_found(r, name);
        if (kx_buf_append(&r->body, f->data, f->len) < 0) {
            r->status = 500;
            return -ENOMEM;
        }
    }
    r->status = status;
    r->content_type = ui_type(name);
    /* Small files, always revalidated: a new hub version shows at once. */
    kx_http_resp_header(r, "cache-control", "no-cache");
    kx_http_resp_header(r, "x-content-type-options", "nosniff");
    kx_http_resp_header(r, "content-security-policy",
                        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                        "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
                        "frame-ancestors 'none'");
    return 0;
}

void kx_ui_serve(const char *dir, const struct kx_http_req *req, struct kx_http_resp *r)
{
    const char *name = req->path + 3; /* after "/ui" */

    if (*name == '\0') {
        r->status = 301;
        kx_http_resp_header(r, "location", "/ui/");
        return;
    }
    name++; /* the '/' */
    kx_ui_file(dir, *name ? name : "index.html", 200, r);
}
