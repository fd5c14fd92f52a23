/* worker/ui_assets.c: lookup in the generated asset table (see ui_assets.h).
 * Binary search over names sorted bytewise by ui/embed.py; never allocates. */
#include "worker/ui_assets.h"

#include <string.h>

static int name_cmp(const char *name, const char *path, size_t len)
{
    size_t nlen = strlen(name);
    int c = memcmp(name, path, nlen < len ? nlen : len);
    if (c != 0)
        return c;
    return nlen < len ? -1 : nlen > len ? 1 : 0;
}

const struct ui_asset *ui_asset_find(const char *path, size_t len)
{
    if (len == 0) {
        path = "index.html";
        len = strlen(path);
    }
    size_t lo = 0, hi = ui_assets_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(ui_assets[mid].name, path, len);
        if (c == 0)
            return &ui_assets[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
