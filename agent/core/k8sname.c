/* Kubernetes object names (see k8sname.h). */
#include "core/k8sname.h"

bool k8s_name_valid(const char *s, size_t n, size_t max, bool dots)
{
    if (!s || n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && !(dots && c == '.'))
            return false;
        if (!alnum && (i == 0 || i == n - 1))
            return false;
    }
    return true;
}
