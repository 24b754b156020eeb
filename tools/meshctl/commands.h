/* meshctl subcommands. Each takes argv with argv[0] = its own name and
 * returns the process exit status. */
#ifndef MESHCTL_COMMANDS_H
#define MESHCTL_COMMANDS_H

int cmd_analyze(int argc, char **argv);

#endif
