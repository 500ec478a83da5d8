// glibc's getopt_long(3), which the Glibc module does not export, and its
// global variables behind accessor functions: Swift 6 refuses to touch
// mutable C globals directly.
#ifndef CTL_CGETOPT_H
#define CTL_CGETOPT_H
#include <getopt.h>

/// optind: the index of the next argv word getopt looks at.
static inline int ctl_getopt_index(void) { return optind; }
/// Sets optind (0 makes glibc start afresh).
static inline void ctl_getopt_set_index(int index) { optind = index; }
/// optarg: the argument of the option getopt returned last, if any.
static inline char *ctl_getopt_argument(void) { return optarg; }
/// opterr: whether getopt prints its own messages.
static inline void ctl_getopt_set_print_errors(int print) { opterr = print; }
/// optopt: the option character getopt found in error.
static inline int ctl_getopt_option(void) { return optopt; }

#endif
