/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup.c - container and pod attribution from cgroup paths (see cgroup.h).
 *
 * The parser walks a path one component at a time and never copies more
 * than a component's worth of bytes; every id it accepts has been checked
 * for exact length and alphabet, because cgroup names are chosen by whoever
 * can create cgroups, and a later responder may act on the id.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"

#define KX_FILEID_KERNFS 0xfe          /* include/linux/exportfs.h: cgroupfs handles */
#define KX_PROC_CGROUP_MAX (16 * 1024) /* a hybrid host's file is ~15 short lines */

const char *kx_runtime_name(enum kx_runtime r)
{
    switch (r) {
    case KX_RUNTIME_CONTAINERD:
        return "containerd";
    case KX_RUNTIME_CRIO:
        return "cri-o";
    case KX_RUNTIME_DOCKER:
        return "docker";
    case KX_RUNTIME_PODMAN:
        return "podman";
    case KX_RUNTIME_KUBEPODS:
        return "kubepods";
    case KX_RUNTIME_NONE:
        break;
    }
    return "";
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_hex_id(const char *s, size_t n)
{
    if (n != KX_CONTAINER_FULL_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_hex(s[i]))
            return false;
    return true;
}

static bool has_prefix(const char *s, size_t n, const char *prefix)
{
    size_t pn = strlen(prefix);

    return n >= pn && memcmp(s, prefix, pn) == 0;
}

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t sn = strlen(suffix);

    return n >= sn && memcmp(s + n - sn, suffix, sn) == 0;
}

/* A pod UID as the kubelet writes it: 8-4-4-4-12 lowercase hex with sep
 * ('-' for cgroupfs, '_' for systemd slices), or 32 hex (static pods).
 * Writes the dashed form into out (KX_POD_UID_LEN + 1 bytes). */
static bool parse_pod_uid(const char *s, size_t n, char sep, char *out)
{
    if (n == 32) {
        for (size_t i = 0; i < n; i++)
            if (!is_lower_hex(s[i]))
                return false;
        memcpy(out, s, n);
        out[n] = '\0';
        return true;
    }
    if (n != KX_POD_UID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash_pos = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash_pos ? s[i] != sep : !is_lower_hex(s[i]))
            return false;
        out[i] = dash_pos ? '-' : s[i];
    }
    out[n] = '\0';
    return true;
}

/* "kubepods-burstable-pod<uid_>.slice", "kubepods-pod<uid_>.slice". */
static bool pod_from_slice(const char *c, size_t n, char *out)
{
    const char *uid = NULL;

    if (!has_prefix(c, n, "kubepods") || !has_suffix(c, n, ".slice"))
        return false;
    n -= strlen(".slice");
    for (size_t i = 0; i + 4 <= n; i++) /* the last "-pod" */
        if (memcmp(c + i, "-pod", 4) == 0)
            uid = c + i + 4;
    return uid && parse_pod_uid(uid, (size_t)(c + n - uid), '_', out);
}

struct runtime_prefix {
    const char *prefix;
    enum kx_runtime rt;
};

/* "<prefix><64hex>.scope" */
static const struct runtime_prefix scope_prefixes[] = {
    {"cri-containerd-", KX_RUNTIME_CONTAINERD},
    {"crio-", KX_RUNTIME_CRIO},
    {"docker-", KX_RUNTIME_DOCKER},
    {"libpod-", KX_RUNTIME_PODMAN},
};

/* "<slice>:<runtime>:<64hex>": containerd/CRI-O with the systemd driver when
 * systemd does not manage the unit (kind, nested setups). */
static const struct runtime_prefix colon_runtimes[] = {
    {"cri-containerd", KX_RUNTIME_CONTAINERD},
    {"crio", KX_RUNTIME_CRIO},
    {"docker", KX_RUNTIME_DOCKER},
};

static enum kx_runtime match_scope(const char *c, size_t n, const char **id)
{
    if (!has_suffix(c, n, ".scope"))
        return KX_RUNTIME_NONE;
    n -= strlen(".scope");
    for (size_t i = 0; i < sizeof(scope_prefixes) / sizeof(scope_prefixes[0]); i++) {
        size_t pn = strlen(scope_prefixes[i].prefix);

        if (has_prefix(c, n, scope_prefixes[i].prefix) && is_hex_id(c + pn, n - pn)) {
            *id = c + pn;
            return scope_prefixes[i].rt;
        }
    }
    return KX_RUNTIME_NONE;
}

static enum kx_runtime match_colon(const char *c, size_t n, const char **id, char *pod)
{
    const char *p1 = memchr(c, ':', n), *p2;

    if (!p1)
        return KX_RUNTIME_NONE;
    p2 = memchr(p1 + 1, ':', (size_t)(c + n - p1 - 1));
    if (!p2 || !is_hex_id(p2 + 1, (size_t)(c + n - p2 - 1)))
        return KX_RUNTIME_NONE;
    for (size_t i = 0; i < sizeof(colon_runtimes) / sizeof(colon_runtimes[0]); i++) {
        size_t rn = strlen(colon_runtimes[i].prefix);

        if ((size_t)(p2 - p1 - 1) == rn && memcmp(p1 + 1, colon_runtimes[i].prefix, rn) == 0) {
            pod_from_slice(c, (size_t)(p1 - c), pod);
            *id = p2 + 1;
            return colon_runtimes[i].rt;
        }
    }
    return KX_RUNTIME_NONE;
}

static void set_container(struct kx_container *out, enum kx_runtime rt, const char *id)
{
    memcpy(out->full_id, id, KX_CONTAINER_FULL_LEN);
    out->full_id[KX_CONTAINER_FULL_LEN] = '\0';
    memcpy(out->id, id, KX_CONTAINER_ID_LEN);
    out->id[KX_CONTAINER_ID_LEN] = '\0';
    out->runtime = rt;
}

int kx_cgroup_parse_path(const char *path, struct kx_container *out)
{
    bool in_kubepods = false, prev_docker = false;
    char pod[KX_POD_UID_LEN + 1];
    const char *c, *end;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!path)
        return -EINVAL;
    if (strnlen(path, KX_CGROUP_PATH_MAX + 1) > KX_CGROUP_PATH_MAX)
        return -ENAMETOOLONG;

    for (c = path; *c; c = end) {
        const char *id = NULL;
        enum kx_runtime rt;
        size_t n;

        while (*c == '/')
            c++;
        end = strchrnul(c, '/');
        n = (size_t)(end - c);
        if (n == 0)
            break;
        if (n > KX_CGROUP_NAME_MAX) {
            memset(out, 0, sizeof(*out));
            return -ENAMETOOLONG;
        }

        pod[0] = '\0';
        rt = match_scope(c, n, &id);
        if (rt == KX_RUNTIME_NONE)
            rt = match_colon(c, n, &id, pod);
        if (rt == KX_RUNTIME_NONE && prev_docker && is_hex_id(c, n)) {
            rt = KX_RUNTIME_DOCKER;
            id = c;
        }
        if (rt == KX_RUNTIME_NONE && in_kubepods && is_hex_id(c, n)) {
            rt = KX_RUNTIME_KUBEPODS;
            id = c;
        }
        if (rt != KX_RUNTIME_NONE)
            set_container(out, rt, id); /* innermost match wins */

        if (pod[0] || pod_from_slice(c, n, pod) ||
            (in_kubepods && has_prefix(c, n, "pod") && parse_pod_uid(c + 3, n - 3, '-', pod)))
            memcpy(out->pod_uid, pod, sizeof(out->pod_uid));

        if (has_prefix(c, n, "kubepods"))
            in_kubepods = true;
        prev_docker = n == strlen("docker") && memcmp(c, "docker", n) == 0;
    }
    return out->runtime != KX_RUNTIME_NONE;
}

/* One line of /proc/<pid>/cgroup: "hier:controllers:path". Sets *v2 and
 * copies the path into buf; false for a malformed or oversize line. */
static bool split_proc_line(const char *line, size_t n, bool *v2, char *buf, size_t buflen)
{
    const char *c1 = memchr(line, ':', n), *c2, *path;
    size_t plen;

    if (!c1 || c1 == line)
        return false;
    for (const char *p = line; p < c1; p++)
        if (*p < '0' || *p > '9')
            return false;
    c2 = memchr(c1 + 1, ':', (size_t)(line + n - c1 - 1));
    if (!c2)
        return false;
    path = c2 + 1;
    plen = (size_t)(line + n - path);
    if (plen == 0 || plen >= buflen || memchr(path, '\0', plen))
        return false;
    *v2 = (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1);
    memcpy(buf, path, plen);
    buf[plen] = '\0';
    return true;
}

/* first_pass 0: the v2 line, then the v1 lines; 1: the v1 lines only. */
static int parse_proc(const char *text, size_t len, int first_pass, struct kx_container *out)
{
    char path[KX_CGROUP_PATH_MAX + 1];
    char pod[KX_POD_UID_LEN + 1] = "";
    struct kx_container tmp;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!text)
        return -EINVAL;

    /* pass 0: the cgroup v2 line; pass 1: the v1 lines, in file order. */
    for (int pass = first_pass; pass < 2; pass++) {
        const char *p = text, *end = text + len;

        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            bool v2;

            if (split_proc_line(p, n, &v2, path, sizeof(path)) && v2 == (pass == 0) &&
                kx_cgroup_parse_path(path, &tmp) >= 0) {
                if (tmp.runtime != KX_RUNTIME_NONE) {
                    if (!tmp.pod_uid[0])
                        memcpy(tmp.pod_uid, pod, sizeof(pod));
                    *out = tmp;
                    return 1;
                }
                if (tmp.pod_uid[0] && !pod[0])
                    memcpy(pod, tmp.pod_uid, sizeof(pod));
            }
            p += n + 1;
        }
    }
    memcpy(out->pod_uid, pod, sizeof(pod));
    return 0;
}

int kx_cgroup_parse_proc(const char *text, size_t len, struct kx_container *out)
{
    return parse_proc(text, len, 0, out);
}

#define KX_CGROUP_CACHE 512 /* direct-mapped id -> attribution entries */

struct kx_cgroup_cache_ent {
    uint64_t id;           /* 0 = empty slot */
    struct kx_container c; /* attribution of the v2 path */
};

struct kx_cgroup_resolver {
    int mnt_fd;     /* cgroup2 mount root, -1 if none */
    char *mnt_path; /* owned: where it is mounted, e.g. "/sys/fs/cgroup/unified" */
    size_t mnt_len;
    bool has_v1; /* v1 hierarchies are mounted (hybrid host) */
    struct kx_cgroup_cache_ent cache[KX_CGROUP_CACHE];
};

/* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;

    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

char *kx_cgroup2_mount(bool *has_v1)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char *line = NULL, *found = NULL;
    size_t cap = 0;
    bool v1_dummy;

    if (!has_v1)
        has_v1 = &v1_dummy;
    *has_v1 = false;
    if (!f)
        return NULL;
    while (getline(&line, &cap, f) > 0) {
        char *sep = strstr(line, " - cgroup2 ");
        char *save = NULL, *tok;
        int field = 0;

        if (strstr(line, " - cgroup "))
            *has_v1 = true;
        if (!sep || found)
            continue;
        *sep = '\0';
        for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            if (++field == 5) { /* id parent maj:min root MOUNTPOINT */
                unescape_octal(tok);
                found = strdup(tok);
                break;
            }
        }
    }
    free(line);
    fclose(f);
    return found;
}

struct kx_cgroup_resolver *kx_cgroup_resolver_new(void)
{
    struct kx_cgroup_resolver *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->mnt_fd = -1;
    r->mnt_path = kx_cgroup2_mount(&r->has_v1);
    if (r->mnt_path) {
        r->mnt_len = strlen(r->mnt_path);
        while (r->mnt_len > 1 && r->mnt_path[r->mnt_len - 1] == '/')
            r->mnt_path[--r->mnt_len] = '\0';
        r->mnt_fd = open(r->mnt_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    return r;
}

void kx_cgroup_resolver_free(struct kx_cgroup_resolver *r)
{
    if (!r)
        return;
    if (r->mnt_fd >= 0)
        close(r->mnt_fd);
    free(r->mnt_path);
    free(r);
}

int kx_cgroup_path_by_id(struct kx_cgroup_resolver *r, uint64_t cgroup_id, char *buf, size_t len)
{
    _Alignas(8) char hbuf[sizeof(struct file_handle) + sizeof(uint64_t)];
    struct file_handle *fh = (struct file_handle *)hbuf;
    char link[64], target[PATH_MAX];
    const char *rel;
    ssize_t n;
    int fd, rc;

    if (!r || !buf || len == 0)
        return -EINVAL;
    if (r->mnt_fd < 0)
        return -ENOENT;

    fh->handle_bytes = sizeof(uint64_t);
    fh->handle_type = KX_FILEID_KERNFS;
    memcpy(fh->f_handle, &cgroup_id, sizeof(cgroup_id));
    fd = open_by_handle_at(r->mnt_fd, fh, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ESTALE ? -ENOENT : -errno;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) {
        rc = -errno;
        goto cleanup;
    }
    target[n] = '\0';
    if (n > 10 && strcmp(target + n - 10, " (deleted)") == 0)
        target[n - 10] = '\0';

    /* Relative to the mount: "/sys/fs/cgroup/unified/a/b" -> "/a/b". */
    rel = target;
    if (strncmp(target, r->mnt_path, r->mnt_len) == 0 &&
        (target[r->mnt_len] == '/' || target[r->mnt_len] == '\0'))
        rel = target + r->mnt_len;
    if (!*rel)
        rel = "/";
    if (strlen(rel) >= len) {
        rc = -ENAMETOOLONG;
        goto cleanup;
    }
    strcpy(buf, rel);
    rc = 0;
cleanup:
    close(fd);
    return rc;
}

/* Reads at most max-1 bytes of a /proc file; returns bytes or -errno. */
static ssize_t read_proc(const char *path, char *buf, size_t max)
{
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    while (len < max - 1) {
        ssize_t n = read(fd, buf + len, max - 1 - len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            n = -errno;
            close(fd);
            return n;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* The attribution of a cgroup v2 id: 1 / 0, or -errno when the id cannot
 * be resolved (cgroup gone, no cgroup2 mount). Cached, as ids are unique. */
static int resolve_id(struct kx_cgroup_resolver *r, uint64_t id, char *buf, size_t len,
                      struct kx_container *out)
{
    struct kx_cgroup_cache_ent *e =
        &r->cache[(id * 0x9E3779B97F4A7C15ull) >> 55 & (KX_CGROUP_CACHE - 1)];
    int rc;

    if (e->id == id) {
        *out = e->c;
        return out->runtime != KX_RUNTIME_NONE;
    }
    rc = kx_cgroup_path_by_id(r, id, buf, len);
    if (rc < 0)
        return rc;
    rc = kx_cgroup_parse_path(buf, out);
    if (rc >= 0) {
        e->id = id;
        e->c = *out;
    }
    return rc;
}

int kx_cgroup_resolve(struct kx_cgroup_resolver *r, pid_t pid, uint64_t cgroup_id,
                      struct kx_container *out)
{
    struct kx_container v1;
    char path[64], *text;
    int v2 = -ENOENT, rc;
    ssize_t n;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    text = malloc(KX_PROC_CGROUP_MAX);
    if (!text)
        return -ENOMEM;

    if (r && cgroup_id) {
        v2 = resolve_id(r, cgroup_id, text, KX_PROC_CGROUP_MAX, out);
        if (v2 == 1 || (v2 == 0 && !r->has_v1)) {
            rc = v2;
            goto cleanup;
        }
    }

    /* v2 said "no container" on a hybrid host: only the v1 lines can add
     * anything. v2 unknown: all lines, as they are now (best effort). */
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    n = read_proc(path, text, KX_PROC_CGROUP_MAX);
    if (n > 0 && parse_proc(text, (size_t)n, v2 >= 0 ? 1 : 0, &v1) == 1) {
        if (!v1.pod_uid[0])
            memcpy(v1.pod_uid, out->pod_uid, sizeof(v1.pod_uid));
        *out = v1;
        rc = 1;
    } else if (v2 >= 0) {
        rc = 0; /* out keeps what v2 found (maybe a pod UID) */
    } else if (n > 0) {
        rc = parse_proc(text, (size_t)n, 0, out);
    } else {
        rc = n < 0 ? (int)n : -ENOENT;
    }
cleanup:
    free(text);
    return rc;
}
