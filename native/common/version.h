/* berth's version, as every helper reports it with --version. BERTH_VERSION is package.json's, given by
 * the Makefile; `berthd version` asks each helper, so a helper left from another build shows. */
#ifndef BERTH_COMMON_VERSION_H
#define BERTH_COMMON_VERSION_H

#include <stdio.h>
#include <string.h>

#ifndef BERTH_VERSION
#define BERTH_VERSION "unknown"
#endif

/* For a helper's main: prints "NAME VERSION" and returns 1 when its only argument is --version. */
static inline int
berth_print_version (int argc, char **argv, const char *name)
{
  if (argc != 2 || strcmp (argv[1], "--version") != 0)
    return 0;
  printf ("%s %s\n", name, BERTH_VERSION);
  return 1;
}

#endif
