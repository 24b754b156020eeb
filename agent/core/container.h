/* container_of: the object that embeds a member, from a pointer to it
 * (h2o's H2O_STRUCT_FROM_MEMBER, the kernel's container_of). */
#ifndef MESHD_CORE_CONTAINER_H
#define MESHD_CORE_CONTAINER_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
