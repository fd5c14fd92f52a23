/* tests/unit/worker/test_ui_assets.c: the UI compiled into the binary is
 * exactly the files in ui/ (run from the repository root, as `make unit`
 * does), each with its content type and a strong ETag of its bytes, and
 * the lookup finds exactly the published names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "worker/ui_assets.h"

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void test_every_asset_is_its_file_with_type_and_sha256_etag(void **state)
{
    (void)state;
    assert_true(ui_assets_count >= 5);
    size_t total = 0;
    for (size_t i = 0; i < ui_assets_count; i++) {
        const struct ui_asset *a = &ui_assets[i];
        char path[256];
        snprintf(path, sizeof path, "ui/%s", a->name);
        size_t len = 0;
        unsigned char *bytes = read_file(path, &len);
        if (bytes == NULL)
            fail_msg("%s: cannot read (run from the repository root)", path);
        assert_int_equal(a->len, len);
        assert_memory_equal(a->data, bytes, len);
        unsigned char md[32];
        unsigned int mdlen = 0;
        assert_int_equal(EVP_Digest(bytes, len, md, &mdlen, EVP_sha256(), NULL), 1);
        char want[40] = "\"";
        for (int k = 0; k < 16; k++)
            snprintf(want + 1 + 2 * k, 3, "%02x", md[k]);
        strcat(want, "\"");
        assert_string_equal(a->etag, want);
        free(bytes);
        total += a->len;
        if (i > 0)
            assert_true(strcmp(ui_assets[i - 1].name, a->name) < 0); /* sorted: binary search */
    }
    assert_int_equal(total, ui_assets_total_bytes);
    /* the bar: well under 100 KB */
    assert_true(ui_assets_total_bytes < 100 * 1000);
}

static void test_lookup_finds_published_names_and_nothing_else(void **state)
{
    (void)state;
    const struct ui_asset *idx = ui_asset_find("", 0);
    assert_non_null(idx);
    assert_string_equal(idx->name, "index.html");
    assert_string_equal(idx->content_type, "text/html; charset=utf-8");
    assert_ptr_equal(ui_asset_find("index.html", 10), idx);
    const struct ui_asset *js = ui_asset_find("app.js", 6);
    assert_non_null(js);
    assert_string_equal(js->content_type, "text/javascript; charset=utf-8");
    const struct ui_asset *css = ui_asset_find("style.css", 9);
    assert_non_null(css);
    assert_string_equal(css->content_type, "text/css; charset=utf-8");
    assert_string_equal(ui_asset_find("icon.svg", 8)->content_type, "image/svg+xml");
    for (size_t i = 0; i < ui_assets_count; i++)
        assert_ptr_equal(ui_asset_find(ui_assets[i].name, strlen(ui_assets[i].name)), &ui_assets[i]);
    static const char *const absent[] = {"app.j",    "app.jss",      "/app.js",    "../app.js", "ui.mk",
                                         "embed.py", "index.html?x", "INDEX.HTML", "a",         "zzz"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        assert_null(ui_asset_find(absent[i], strlen(absent[i])));
    /* a name is matched by length, not up to a NUL */
    assert_null(ui_asset_find("app.js\0x", 8));
}

static void test_page_loads_scripts_only_from_files_so_the_csp_holds(void **state)
{
    (void)state;
    const struct ui_asset *idx = ui_asset_find("", 0);
    const char *html = (const char *)idx->data;
    /* no inline script or style, no handler attributes: CSP script-src 'self' */
    assert_null(memmem(html, idx->len, "<script>", 8));
    assert_null(memmem(html, idx->len, "<style", 6));
    assert_null(memmem(html, idx->len, " onclick=", 9));
    assert_null(memmem(html, idx->len, " style=", 7));
    assert_null(memmem(html, idx->len, "http://", 7));
    assert_null(memmem(html, idx->len, "https://", 8));
    assert_non_null(strstr(UI_CSP, "script-src 'self'"));
    assert_non_null(strstr(UI_CSP, "frame-ancestors 'none'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_asset_is_its_file_with_type_and_sha256_etag),
        cmocka_unit_test(test_lookup_finds_published_names_and_nothing_else),
        cmocka_unit_test(test_page_loads_scripts_only_from_files_so_the_csp_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
