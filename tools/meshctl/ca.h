/* meshctl ca: create the mesh CA and issue workload certificates offline. */
#ifndef MESHCTL_CA_H
#define MESHCTL_CA_H

int ctl_ca(int argc, char **argv);

#endif
