/* version.h — plot's release version. */
#ifndef PLOT_VERSION_H
#define PLOT_VERSION_H
#define PLOT_VERSION "0.1.0"
const char *plot_version(void);
#endif
