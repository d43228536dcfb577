/*
 * keyring.c — the key ring loader: see keyring.h for the file format.
 *
 * The file is read whole into a stack buffer, parsed line by line, and the
 * buffer wiped with OPENSSL_cleanse. Errors name the file and the line, never
 * the line's text (it holds key material).
 */
#include "keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define KEY_FILE_BYTES_MAX (16 * 1024)

void gl_keyring_clear(gl_keyring *ring) {
    if (!ring) return;
    OPENSSL_cleanse(ring, sizeof *ring);
    ring->n_keys = 0;
}

const gl_key *gl_keyring_find(const gl_keyring *ring, const char *id) {
    if (ring == NULL || id == NULL) return NULL;
    for (int i = 0; i < ring->n_keys && i < GL_KEYRING_MAX; i++)
        if (strcmp(ring->keys[i].id, id) == 0) return &ring->keys[i];
    return NULL;
}

static bool key_id_char_ok(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool gl_keyring_id_ok(const char *s, size_t n) {
    if (n == 0 || n > GL_KEY_ID_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!key_id_char_ok(s[i])) return false;
    return true;
}

static int hex_nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/*
 * Reads the whole file into buf (cap bytes). The permission check is done with
 * fstat on the open descriptor, so it applies to the file actually read.
 */
static bool read_key_file(const char *path, const char *what, const char *why_private, char *buf, size_t cap,
                          size_t *len, gl_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        gl_error_set(err, GL_ERR_CONFIG, "cannot open %s \"%s\"", what, path);
        gl_error_detail(err, "%s", strerror(e));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        gl_error_set(err, GL_ERR_CONFIG, "%s \"%s\" is not a regular file", what, path);
        return false;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        gl_error_set(err, GL_ERR_CONFIG, "%s \"%s\" is accessible to group or others (mode %04o)", what, path,
                     (unsigned)(st.st_mode & 07777));
        gl_error_detail(err, "%s", why_private);
        gl_error_hint(err, "chmod 600 %s", path);
        return false;
    }
    size_t n = 0;
    bool ok = true;
    while (n < cap) { /* cap - 1 is the limit: one byte more means "too large" (the file may grow after fstat) */
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) ok = false;
        if (got <= 0) break;
        n += (size_t)got;
    }
    close(fd);
    *len = n;
    if (!ok || n >= cap) {
        OPENSSL_cleanse(buf, cap);
        gl_error_set(err, GL_ERR_CONFIG, "%s \"%s\" %s", what, path, ok ? "is too large" : "cannot be read");
        return false;
    }
    return true;
}

/* One line: "<key_id> <64 hex>" [# comment]; blank and comment lines add
 * nothing. Returns why the line is malformed, or NULL. Never quotes the line. */
static const char *parse_key_line(const char *line, size_t len, gl_keyring *ring) {
    size_t i = 0;
    while (i < len && is_blank(line[i])) i++;
    if (i == len || line[i] == '#') return NULL;
    size_t id_start = i;
    while (i < len && !is_blank(line[i])) i++;
    size_t id_len = i - id_start;
    if (!gl_keyring_id_ok(line + id_start, id_len)) return "the key id must be 1-32 of [A-Za-z0-9_-]";
    while (i < len && is_blank(line[i])) i++;
    size_t hex_start = i;
    while (i < len && !is_blank(line[i])) i++;
    if (i - hex_start != (size_t)2 * GL_KEY_BYTES) return "expected \"<key_id> <64 hex chars>\"";
    while (i < len && is_blank(line[i])) i++;
    if (i < len && line[i] != '#') return "unexpected text after the key";
    for (int k = 0; k < ring->n_keys; k++)
        if (strlen(ring->keys[k].id) == id_len && memcmp(ring->keys[k].id, line + id_start, id_len) == 0)
            return "duplicate key id";
    if (ring->n_keys == GL_KEYRING_MAX) return "too many keys (at most 16)";
    gl_key *key = &ring->keys[ring->n_keys];
    for (size_t b = 0; b < GL_KEY_BYTES; b++) {
        int hi = hex_nibble(line[hex_start + 2 * b]);
        int lo = hex_nibble(line[hex_start + 2 * b + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(key, sizeof *key);
            return "the key must be 64 hex characters";
        }
        key->key[b] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(key->id, line + id_start, id_len);
    key->id[id_len] = '\0';
    ring->n_keys++;
    return NULL;
}

bool gl_keyring_load(const char *path, const char *what, const char *why_private, gl_keyring *ring, gl_error *err) {
    gl_keyring_clear(ring);
    if (path == NULL || ring == NULL || what == NULL || why_private == NULL) {
        gl_error_set(err, GL_ERR_INVALID, "%s: bad arguments", what ? what : "key ring");
        return false;
    }
    char text[KEY_FILE_BYTES_MAX + 1];
    size_t len = 0;
    if (!read_key_file(path, what, why_private, text, sizeof text, &len, err)) return false;
    const char *problem = NULL;
    int line_no = 0;
    for (size_t start = 0; start < len && !problem;) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        line_no++;
        problem = parse_key_line(text + start, end - start, ring);
        start = end + 1;
    }
    OPENSSL_cleanse(text, sizeof text);
    if (problem) {
        gl_keyring_clear(ring);
        gl_error_set(err, GL_ERR_CONFIG, "%s \"%s\" line %d: %s", what, path, line_no, problem);
        return false;
    }
    if (ring->n_keys == 0) {
        gl_error_set(err, GL_ERR_CONFIG, "%s \"%s\" holds no key", what, path);
        gl_error_hint(err, "one line per key: <key_id> <64 hex chars>; the first is the active key");
        return false;
    }
    return true;
}
