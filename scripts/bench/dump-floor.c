/* The least any conntrack tool can spend listing a table: one
 * IPCTNL_MSG_CT_GET dump on a NETLINK_NETFILTER socket, every datagram
 * received and dropped, nothing decoded or printed. make bench times it
 * next to ctl and conntrack ("dump floor"): what is left above it is the
 * tools' own work and start-up. Exits 0 once NLMSG_DONE arrives. */
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) { perror("socket"); return 1; }
    struct {
        struct nlmsghdr header;
        struct nfgenmsg body;
    } request = {
        .header = {
            .nlmsg_len = sizeof(request),
            .nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
            .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
            .nlmsg_seq = 1,
        },
        .body = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0 },
    };
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, &request, sizeof(request), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
        perror("sendto");
        return 1;
    }
    static char buffer[128 * 1024] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
        if (n < 0) { perror("recv"); return 1; }
        for (struct nlmsghdr *m = (struct nlmsghdr *)buffer; NLMSG_OK(m, n); m = NLMSG_NEXT(m, n)) {
            if (m->nlmsg_type == NLMSG_DONE) return 0;
            if (m->nlmsg_type == NLMSG_ERROR) { fputs("dump-floor: error reply\n", stderr); return 1; }
        }
    }
}
