/* seccomp: an OCI LinuxSeccomp profile compiled with libseccomp, loaded just before exec. */
#ifndef BERTH_RUNTIME_SECCOMP_H
#define BERTH_RUNTIME_SECCOMP_H

#include <jansson.h>

#include "../common/error.h"

struct rt_seccomp;

/* Builds the filter (not loaded yet): errors in the profile are found here, before `create` succeeds. */
int rt_seccomp_compile (json_t *profile, struct rt_seccomp **out, berth_error_t *err);

/* Loads the filter into this process (needs no_new_privs or CAP_SYS_ADMIN). */
int rt_seccomp_load (struct rt_seccomp *s, berth_error_t *err);

void rt_seccomp_free (struct rt_seccomp *s);

#endif
