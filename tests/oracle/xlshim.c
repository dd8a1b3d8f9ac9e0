/* Test-only LD_PRELOAD shim: lets `xl -N create` parse a config on a machine without Xen.
 * It answers the few hypervisor and xenstore queries xl makes before printing libxl's JSON;
 * everything else is untouched, so the parsing under test is Xen's own. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xenctrl.h>
#include <xenstore.h>

static int dummy_handle;

xc_interface *xc_interface_open(xentoollog_logger *l, xentoollog_logger *dl, unsigned f)
{
    (void)l; (void)dl; (void)f;
    return (xc_interface *)&dummy_handle;
}

int xc_interface_close(xc_interface *xch) { (void)xch; return 0; }

int xc_physinfo(xc_interface *xch, xc_physinfo_t *info)
{
    (void)xch;
    memset(info, 0, sizeof(*info));
    info->threads_per_core = 1;
    info->cores_per_socket = 1;
    info->nr_cpus = 1;
    info->max_cpu_id = 0;
    info->nr_nodes = 1;
    info->max_node_id = 0;
    info->cpu_khz = 1000000;
    info->total_pages = 262144;
    info->free_pages = 131072;
    return 0;
}

/* One CPU (0), on NUMA node 0: what libxl_node_to_cpumap reads for cpus = "node:N". */
int xc_cputopoinfo(xc_interface *xch, unsigned *max_cpus, xc_cputopo_t *cputopo)
{
    (void)xch;
    if (cputopo != NULL && *max_cpus >= 1) {
        cputopo[0].core = 0;
        cputopo[0].socket = 0;
        cputopo[0].node = 0;
    }
    *max_cpus = 1;
    return 0;
}

int xc_get_max_cpus(xc_interface *xch) { (void)xch; return 1; }
int xc_get_online_cpus(xc_interface *xch) { (void)xch; return 1; }
int xc_get_max_nodes(xc_interface *xch) { (void)xch; return 1; }

struct xs_handle *xs_open(unsigned long flags)
{
    (void)flags;
    return (struct xs_handle *)&dummy_handle;
}

void xs_close(struct xs_handle *h) { (void)h; }
void xs_daemon_close(struct xs_handle *h) { (void)h; }

void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *len)
{
    (void)h; (void)t; (void)path; (void)len;
    errno = ENOENT;
    return NULL;
}

char **xs_directory(struct xs_handle *h, xs_transaction_t t, const char *path,
                    unsigned int *num)
{
    (void)h; (void)t; (void)path;
    *num = 0;
    errno = ENOENT;
    return NULL;
}

int xc_version(xc_interface *xch, int cmd, void *arg)
{
    (void)xch;
    switch (cmd) {
    case XENVER_version:
        return (4 << 16) | 17;
    case XENVER_extraversion:
        memset(arg, 0, sizeof(xen_extraversion_t));
        strcpy(arg, ".0");
        return 0;
    case XENVER_compile_info:
        memset(arg, 0, sizeof(xen_compile_info_t));
        return 0;
    case XENVER_capabilities:
        memset(arg, 0, sizeof(xen_capabilities_info_t));
        strcpy(arg, "xen-3.0-x86_64 hvm-3.0-x86_64");
        return 0;
    case XENVER_changeset:
        memset(arg, 0, sizeof(xen_changeset_info_t));
        return 0;
    case XENVER_platform_parameters:
        memset(arg, 0, sizeof(xen_platform_parameters_t));
        return 0;
    case XENVER_pagesize:
        return 4096;
    case XENVER_commandline:
        memset(arg, 0, sizeof(xen_commandline_t));
        return 0;
    default:
        errno = ENOSYS;
        return -1;
    }
}

long xc_sharing_freed_pages(xc_interface *xch) { (void)xch; return 0; }
long xc_sharing_used_frames(xc_interface *xch) { (void)xch; return 0; }
