/* meshctl analyze: istioctl analyze for meshd, offline, on meshd's own
 * configuration model. */
#ifndef MESHCTL_ANALYZE_H
#define MESHCTL_ANALYZE_H

/* Exit status: 0 clean or warnings only, 79 (istioctl's) on errors, 2 usage. */
int ctl_analyze(int argc, char **argv, int json);

#endif
