/*
 * The package ships one program under three names: /usr/bin/accessctl and
 * /usr/bin/access-gpio-probe are symbolic links to /usr/bin/accessd. The Swift runtime and the
 * libraries linked statically into it are then carried once instead of three times.
 * Scripts/package.sh links this file with the three programs' objects; each program's entry
 * point is its module's `<module>_main` (SwiftPM names them so for testable executables).
 */
#include <stdio.h>
#include <string.h>

int accessd_main(int argc, char **argv);
int accessctl_main(int argc, char **argv);
int access_gpio_probe_main(int argc, char **argv);

int main(int argc, char **argv) {
    const char *path = argc > 0 && argv[0] != NULL ? argv[0] : "";
    const char *slash = strrchr(path, '/');
    const char *name = slash != NULL ? slash + 1 : path;
    if (strcmp(name, "accessd") == 0) return accessd_main(argc, argv);
    if (strcmp(name, "accessctl") == 0) return accessctl_main(argc, argv);
    if (strcmp(name, "access-gpio-probe") == 0) return access_gpio_probe_main(argc, argv);
    fprintf(stderr, "%s: run as accessd, accessctl or access-gpio-probe (links to this program)\n", path);
    return 64;
}
