/* meshctl dashboard's web app, built into the binary (Makefile: embed.sh
 * over tools/meshctl/web/ and cytoscape's dist/cytoscape.min.js, vendored
 * from npm at build time): nothing is fetched at run time. */
#ifndef MESHCTL_ASSETS_H
#define MESHCTL_ASSETS_H

#include <stddef.h>

struct dash_asset {
    const char *path, *content_type;
    const unsigned char *data;
    size_t len;
};

extern const struct dash_asset dash_assets[];
extern const size_t dash_nassets;

#endif
