/* cli_env.h - the ECF8_* environment variables of the ecf8 tool and the
 * benchmarks (README.md, "Environment"), mapped onto the library's explicit
 * parameters: the one place either side reads them (the library itself
 * reads none but in its 1.0 compatibility entry points). */
#ifndef ECF8_CLI_ENV_H
#define ECF8_CLI_ENV_H

#include "ecf8_cl.h"

/* ECF8_DECODE_KERNEL, _VW, _NSETS, _READER (words, qwords), _NL, _WG and
 * ECF8_MATMUL_LANES, _IL, _MB, _PREFETCH as a tuning (unset or invalid:
 * 0, the library's choice).  Strings point into the environment. */
void cli_env_tuning(ecf8_cl_tuning *tuning);
/* The device preferences ECF8_PLATFORM and ECF8_DEVICE (NULL when unset). */
void cli_env_device(const char **platform, const char **device);
/* ecf8_cl_open on the device those choose; on a terminal (stderr) also
 * cli_build_notice_install. */
int cli_env_open(cl_context *context, cl_device_id *device, cl_command_queue *queue);
/* Says "building OpenCL kernels" on stderr once a kernel build has run
 * for a second (cli_notice.c). */
void cli_build_notice_install(void);

#endif
