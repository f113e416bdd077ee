#include "seccomp.h"

#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

struct rt_seccomp
{
  scmp_filter_ctx ctx;
};

static int
parse_action (const char *name, json_t *errno_ret, uint32_t *out, berth_error_t *err)
{
  uint16_t ret = json_is_integer (errno_ret) ? (uint16_t) json_integer_value (errno_ret) : EPERM;
  if (name == NULL)
    return berth_error (err, 0, "seccomp: missing action");
  if (strcmp (name, "SCMP_ACT_ALLOW") == 0)
    *out = SCMP_ACT_ALLOW;
  else if (strcmp (name, "SCMP_ACT_ERRNO") == 0)
    *out = SCMP_ACT_ERRNO (ret);
  else if (strcmp (name, "SCMP_ACT_KILL") == 0 || strcmp (name, "SCMP_ACT_KILL_THREAD") == 0)
    *out = SCMP_ACT_KILL_THREAD;
  else if (strcmp (name, "SCMP_ACT_KILL_PROCESS") == 0)
    *out = SCMP_ACT_KILL_PROCESS;
  else if (strcmp (name, "SCMP_ACT_TRAP") == 0)
    *out = SCMP_ACT_TRAP;
  else if (strcmp (name, "SCMP_ACT_TRACE") == 0)
    *out = SCMP_ACT_TRACE (ret);
  else if (strcmp (name, "SCMP_ACT_LOG") == 0)
    *out = SCMP_ACT_LOG;
  else
    return berth_error (err, 0, "seccomp: unsupported action %s", name);
  return 0;
}

static int
parse_op (const char *name, enum scmp_compare *out)
{
  static const struct
  {
    const char *name;
    enum scmp_compare op;
  } ops[] = {
    { "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT }, { "SCMP_CMP_LE", SCMP_CMP_LE },
    { "SCMP_CMP_EQ", SCMP_CMP_EQ }, { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
    { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
  };
  for (size_t i = 0; name && i < sizeof (ops) / sizeof (ops[0]); i++)
    if (strcmp (ops[i].name, name) == 0)
      {
        *out = ops[i].op;
        return 0;
      }
  return -1;
}

/* "SCMP_ARCH_X86_64" -> libseccomp's token for "x86_64". */
static int
add_arch (scmp_filter_ctx ctx, const char *name, berth_error_t *err)
{
  char lower[64];
  if (name == NULL || strncmp (name, "SCMP_ARCH_", 10) != 0 || strlen (name + 10) >= sizeof (lower))
    return berth_error (err, 0, "seccomp: invalid architecture %s", name ? name : "(none)");
  size_t i;
  for (i = 0; name[10 + i]; i++)
    lower[i] = (char) tolower ((unsigned char) name[10 + i]);
  lower[i] = '\0';
  uint32_t arch = seccomp_arch_resolve_name (lower);
  if (arch == 0)
    return berth_error (err, 0, "seccomp: unknown architecture %s", name);
  int r = seccomp_arch_add (ctx, arch);
  if (r < 0 && r != -EEXIST)
    return berth_error (err, -r, "seccomp: add architecture %s", name);
  return 0;
}

static int
get_u64 (json_t *v, uint64_t *out)
{
  if (v == NULL)
    {
      *out = 0;
      return 0;
    }
  if (json_is_integer (v))
    {
      *out = (uint64_t) json_integer_value (v);
      return 0;
    }
  if (json_is_real (v))
    {
      *out = (uint64_t) json_real_value (v);
      return 0;
    }
  return -1;
}

static int
add_rule (scmp_filter_ctx ctx, const char *syscall, uint32_t action, json_t *args, berth_error_t *err)
{
  int nr = seccomp_syscall_resolve_name (syscall);
  if (nr == __NR_SCMP_ERROR)
    return 0; /* unknown to this libseccomp: skipped, as runc does */
  size_t n = json_is_array (args) ? json_array_size (args) : 0;
  struct scmp_arg_cmp cmps[6];
  if (n > 6)
    return berth_error (err, 0, "seccomp: %s has more than 6 argument conditions", syscall);
  int repeated = 0;
  for (size_t i = 0; i < n; i++)
    {
      json_t *a = json_array_get (args, i);
      enum scmp_compare op;
      uint64_t index, value, value2;
      if (get_u64 (json_object_get (a, "index"), &index) < 0 || index > 5 || get_u64 (json_object_get (a, "value"), &value) < 0
          || get_u64 (json_object_get (a, "valueTwo"), &value2) < 0 || parse_op (json_string_value (json_object_get (a, "op")), &op) < 0)
        return berth_error (err, 0, "seccomp: invalid argument condition %zu of %s", i, syscall);
      for (size_t j = 0; j < i; j++)
        if (cmps[j].arg == index)
          repeated = 1;
      /* For SCMP_CMP_MASKED_EQ, value is the mask and valueTwo the datum, as in the OCI spec. */
      cmps[i] = (struct scmp_arg_cmp) { (unsigned) index, op, value, value2 };
    }
  int r;
  if (!repeated)
    {
      r = seccomp_rule_add_array (ctx, action, nr, (unsigned) n, n ? cmps : NULL);
      if (r < 0)
        return berth_error (err, -r, "seccomp: add rule for %s", syscall);
      return 0;
    }
  /* libseccomp takes one condition per argument in a rule: conditions on one argument are separate rules. */
  for (size_t i = 0; i < n; i++)
    {
      r = seccomp_rule_add_array (ctx, action, nr, 1, &cmps[i]);
      if (r < 0)
        return berth_error (err, -r, "seccomp: add rule for %s", syscall);
    }
  return 0;
}

int
rt_seccomp_compile (json_t *profile, struct rt_seccomp **out, berth_error_t *err)
{
  *out = NULL;
  if (profile == NULL)
    return 0;
  uint32_t def;
  if (parse_action (json_string_value (json_object_get (profile, "defaultAction")), json_object_get (profile, "defaultErrnoRet"), &def, err) < 0)
    return -1;
  struct rt_seccomp *s = calloc (1, sizeof (*s));
  if (s == NULL)
    return berth_error (err, ENOMEM, "seccomp");
  s->ctx = seccomp_init (def);
  if (s->ctx == NULL)
    {
      free (s);
      return berth_error (err, EINVAL, "seccomp_init");
    }
  int r = seccomp_attr_set (s->ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (r < 0)
    {
      rt_seccomp_free (s);
      return berth_error (err, -r, "seccomp: clear the no_new_privs attribute");
    }
  size_t i;
  json_t *v;
  json_array_foreach (json_object_get (profile, "architectures"), i, v)
  {
    if (add_arch (s->ctx, json_string_value (v), err) < 0)
      goto fail;
  }
  json_array_foreach (json_object_get (profile, "flags"), i, v)
  {
    const char *flag = json_string_value (v);
    enum scmp_filter_attr attr;
    if (flag && strcmp (flag, "SECCOMP_FILTER_FLAG_TSYNC") == 0)
      attr = SCMP_FLTATR_CTL_TSYNC;
    else if (flag && strcmp (flag, "SECCOMP_FILTER_FLAG_LOG") == 0)
      attr = SCMP_FLTATR_CTL_LOG;
    else if (flag && strcmp (flag, "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
      attr = SCMP_FLTATR_CTL_SSB;
    else
      {
        berth_error (err, 0, "seccomp: unsupported flag %s", flag ? flag : "(none)");
        goto fail;
      }
    r = seccomp_attr_set (s->ctx, attr, 1);
    if (r < 0)
      {
        berth_error (err, -r, "seccomp: set flag %s", flag);
        goto fail;
      }
  }
  json_array_foreach (json_object_get (profile, "syscalls"), i, v)
  {
    uint32_t action;
    if (parse_action (json_string_value (json_object_get (v, "action")), json_object_get (v, "errnoRet"), &action, err) < 0)
      goto fail;
    if (action == def)
      continue; /* libseccomp refuses rules that repeat the default action */
    size_t k;
    json_t *name;
    json_array_foreach (json_object_get (v, "names"), k, name)
    {
      if (!json_is_string (name))
        {
          berth_error (err, 0, "seccomp: syscall names must be strings");
          goto fail;
        }
      if (add_rule (s->ctx, json_string_value (name), action, json_object_get (v, "args"), err) < 0)
        goto fail;
    }
  }
  *out = s;
  return 0;
fail:
  rt_seccomp_free (s);
  return -1;
}

int
rt_seccomp_load (struct rt_seccomp *s, berth_error_t *err)
{
  if (s == NULL)
    return 0;
  int r = seccomp_load (s->ctx);
  if (r < 0)
    return berth_error (err, -r, "load the seccomp filter");
  return 0;
}

void
rt_seccomp_free (struct rt_seccomp *s)
{
  if (s == NULL)
    return;
  seccomp_release (s->ctx);
  free (s);
}
