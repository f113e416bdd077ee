#include "devices_bpf.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/cleanup.h"

static const struct dev_rule default_rules[] = {
  { 1, 'c', -1, -1, DEV_ACC_MKNOD }, { 1, 'b', -1, -1, DEV_ACC_MKNOD },
  { 1, 'c', 1, 3, 7 },  /* null */    { 1, 'c', 1, 8, 7 },  /* random */  { 1, 'c', 1, 7, 7 },  /* full */
  { 1, 'c', 5, 0, 7 },  /* tty */     { 1, 'c', 1, 5, 7 },  /* zero */    { 1, 'c', 1, 9, 7 },  /* urandom */
  { 1, 'c', 5, 1, 7 },  /* console */ { 1, 'c', 136, -1, 7 }, /* pts */  { 1, 'c', 5, 2, 7 },  /* ptmx */
  { 1, 'c', 10, 200, 7 }, /* tun */
};

static int
parse_access (const char *s, int *out)
{
  *out = 0;
  for (; *s; s++)
    switch (*s)
      {
      case 'r': *out |= DEV_ACC_READ; break;
      case 'w': *out |= DEV_ACC_WRITE; break;
      case 'm': *out |= DEV_ACC_MKNOD; break;
      default: return -1;
      }
  return 0;
}

int
dev_rules_from_spec (json_t *devices, struct dev_rule **out, size_t *n, berth_error_t *err)
{
  size_t count = json_is_array (devices) ? json_array_size (devices) : 0;
  size_t total = count + sizeof (default_rules) / sizeof (default_rules[0]);
  struct dev_rule *rules = calloc (total, sizeof (*rules));
  if (rules == NULL)
    return berth_error (err, ENOMEM, "device rules");
  for (size_t i = 0; i < count; i++)
    {
      json_t *d = json_array_get (devices, i);
      struct dev_rule *r = &rules[i];
      const char *type = json_string_value (json_object_get (d, "type"));
      const char *access = json_string_value (json_object_get (d, "access"));
      json_t *major = json_object_get (d, "major");
      json_t *minor = json_object_get (d, "minor");
      r->allow = json_is_true (json_object_get (d, "allow"));
      r->type = type && *type ? type[0] : 'a';
      r->major = json_is_integer (major) ? (long) json_integer_value (major) : -1;
      r->minor = json_is_integer (minor) ? (long) json_integer_value (minor) : -1;
      if ((type && strlen (type) > 1) || strchr ("acb", r->type) == NULL || parse_access (access && *access ? access : "rwm", &r->access) < 0)
        {
          free (rules);
          return berth_error (err, 0, "invalid device rule %zu (type %s, access %s)", i, type ? type : "", access ? access : "");
        }
      if (r->type == 'a')
        r->major = r->minor = -1;
    }
  memcpy (rules + count, default_rules, sizeof (default_rules));
  *out = rules;
  *n = total;
  return 0;
}

void
dev_rule_format (const struct dev_rule *r, char *buf, size_t len)
{
  char maj[24] = "*", min[24] = "*", acc[4];
  int k = 0;
  if (r->major >= 0)
    snprintf (maj, sizeof (maj), "%ld", r->major);
  if (r->minor >= 0)
    snprintf (min, sizeof (min), "%ld", r->minor);
  if (r->access & DEV_ACC_READ)
    acc[k++] = 'r';
  if (r->access & DEV_ACC_WRITE)
    acc[k++] = 'w';
  if (r->access & DEV_ACC_MKNOD)
    acc[k++] = 'm';
  acc[k] = '\0';
  if (r->type == 'a')
    snprintf (buf, len, "a *:* %s", acc);
  else
    snprintf (buf, len, "%c %s:%s %s", r->type, maj, min, acc);
}

/* ---- the program ---- */

struct prog
{
  struct bpf_insn *insns;
  size_t n, cap;
};

static int
emit (struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
  if (p->n == p->cap)
    {
      size_t cap = p->cap ? p->cap * 2 : 64;
      struct bpf_insn *bigger = realloc (p->insns, cap * sizeof (*bigger));
      if (bigger == NULL)
        return -1;
      p->insns = bigger;
      p->cap = cap;
    }
  struct bpf_insn *i = &p->insns[p->n++];
  memset (i, 0, sizeof (*i));
  i->code = code;
  i->dst_reg = dst;
  i->src_reg = src;
  i->off = off;
  i->imm = imm;
  return 0;
}

/* Registers: r2 device type, r3 requested access, r4 major, r5 minor (from the bpf_cgroup_dev_ctx in r1). */
static int
emit_rule (struct prog *p, const struct dev_rule *r)
{
  /* Each check jumps past the end of this rule's block when it does not match: count the block first. */
  int checks = (r->type != 'a') + (r->major >= 0) + (r->minor >= 0);
  int size = checks + 2 /* mov, and */ + 1 /* access check */ + 2 /* mov r0, exit */;
  int at = 0;
  int r_type = r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
  if (r->type != 'a' && (at++, emit (p, BPF_JMP | BPF_JNE | BPF_K, 2, 0, (int16_t) (size - at), r_type)) < 0)
    return -1;
  if (r->major >= 0 && (at++, emit (p, BPF_JMP | BPF_JNE | BPF_K, 4, 0, (int16_t) (size - at), (int32_t) r->major)) < 0)
    return -1;
  if (r->minor >= 0 && (at++, emit (p, BPF_JMP | BPF_JNE | BPF_K, 5, 0, (int16_t) (size - at), (int32_t) r->minor)) < 0)
    return -1;
  if (emit (p, BPF_ALU64 | BPF_MOV | BPF_X, 6, 3, 0, 0) < 0)
    return -1;
  at++;
  if (r->allow)
    {
      /* Allowed when every access asked for is in the rule. */
      if (emit (p, BPF_ALU64 | BPF_AND | BPF_K, 6, 0, 0, ~r->access & 7) < 0)
        return -1;
      at++;
      if ((at++, emit (p, BPF_JMP | BPF_JNE | BPF_K, 6, 0, (int16_t) (size - at), 0)) < 0)
        return -1;
    }
  else
    {
      /* Denied when any access asked for is in the rule. */
      if (emit (p, BPF_ALU64 | BPF_AND | BPF_K, 6, 0, 0, r->access) < 0)
        return -1;
      at++;
      if ((at++, emit (p, BPF_JMP | BPF_JEQ | BPF_K, 6, 0, (int16_t) (size - at), 0)) < 0)
        return -1;
    }
  if (emit (p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r->allow) < 0 || emit (p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0) < 0)
    return -1;
  return 0;
}

static int
build (const struct dev_rule *rules, size_t n, struct prog *p)
{
  /* Like the cgroup v1 controller: "a *:* rwm" resets the list and sets the default; later rules win. */
  int deflt = 1;
  size_t start = 0;
  for (size_t i = 0; i < n; i++)
    if (rules[i].type == 'a' && rules[i].access == 7)
      {
        deflt = rules[i].allow;
        start = i + 1;
      }
  if (emit (p, BPF_LDX | BPF_W | BPF_MEM, 2, 1, 0, 0) < 0 || emit (p, BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0) < 0
      || emit (p, BPF_ALU64 | BPF_AND | BPF_K, 2, 0, 0, 0xffff) < 0 || emit (p, BPF_ALU64 | BPF_RSH | BPF_K, 3, 0, 0, 16) < 0
      || emit (p, BPF_LDX | BPF_W | BPF_MEM, 4, 1, 4, 0) < 0 || emit (p, BPF_LDX | BPF_W | BPF_MEM, 5, 1, 8, 0) < 0)
    return -1;
  for (size_t i = n; i > start; i--)
    if (emit_rule (p, &rules[i - 1]) < 0)
      return -1;
  if (emit (p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, deflt) < 0 || emit (p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0) < 0)
    return -1;
  return 0;
}

int
dev_bpf_attach (const char *cgroup_dir, const struct dev_rule *rules, size_t n, berth_error_t *err)
{
  struct prog p = { NULL, 0, 0 };
  if (build (rules, n, &p) < 0)
    {
      free (p.insns);
      return berth_error (err, ENOMEM, "device filter");
    }
  static char log[16384];
  union bpf_attr attr;
  memset (&attr, 0, sizeof (attr));
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t) (uintptr_t) p.insns;
  attr.insn_cnt = (uint32_t) p.n;
  attr.license = (uint64_t) (uintptr_t) "Apache";
  attr.log_buf = (uint64_t) (uintptr_t) log;
  attr.log_size = sizeof (log);
  attr.log_level = 1;
  log[0] = '\0';
  cleanup_close int prog = (int) syscall (SYS_bpf, BPF_PROG_LOAD, &attr, sizeof (attr));
  int saved = errno;
  free (p.insns);
  if (prog < 0)
    return berth_error (err, saved, "load the cgroup device filter (%s)", log[0] ? log : "no verifier log");
  cleanup_close int dir = open (cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return berth_error (err, errno, "open %s", cgroup_dir);
  memset (&attr, 0, sizeof (attr));
  attr.target_fd = (uint32_t) dir;
  attr.attach_bpf_fd = (uint32_t) prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall (SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof (attr)) < 0)
    return berth_error (err, errno, "attach the device filter to %s", cgroup_dir);
  return 0;
}
