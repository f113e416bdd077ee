/* The one assertion the native unit tests use: a failed check is printed and counted, and the test
 * program exits non-zero at the end if any failed. */
#ifndef BERTH_TESTS_CHECK_H
#define BERTH_TESTS_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                     \
  do                                                                                    \
    {                                                                                   \
      if (!(cond))                                                                      \
        {                                                                               \
          fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
          failures++;                                                                   \
        }                                                                               \
    }                                                                                   \
  while (0)

#endif
