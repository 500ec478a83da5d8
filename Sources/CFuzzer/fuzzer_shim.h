/* libFuzzer's driver entry point (libclang_rt.fuzzer, linked by
 * -sanitize=fuzzer). SwiftPM gives an executable its own main, so
 * ctl-fuzz-decoder's main hands over to libFuzzer through this. */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv,
                        int (*UserCb)(const uint8_t *Data, size_t Size));
