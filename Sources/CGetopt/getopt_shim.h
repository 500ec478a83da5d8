// glibc's getopt_long(3), which the Glibc module does not export.
#ifndef CTL_CGETOPT_H
#define CTL_CGETOPT_H
#include <getopt.h>
#endif
