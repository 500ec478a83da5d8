// C shims for libmnl and the nfnetlink headers. Only what Swift cannot
// import directly (macros, and the two system calls glibc declares only
// under _GNU_SOURCE) is wrapped here; nothing else lives in this file.
#ifndef CTL_CMNL_SHIM_H
#define CTL_CMNL_SHIM_H

#include <sys/types.h>
#include <netinet/in.h> /* before the linux/ headers, so in6_addr comes from libc */
#include <sys/socket.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <poll.h>
#include <signal.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nf_conntrack_sctp.h>
#include <linux/filter.h>

/// MNL_SOCKET_BUFFER_SIZE
static inline size_t cmnl_socket_buffer_size(void) { return (size_t)MNL_SOCKET_BUFFER_SIZE; }
/// MNL_ALIGN(len)
static inline size_t cmnl_align(size_t len) { return MNL_ALIGN(len); }
/// MNL_NLMSG_HDRLEN
static inline size_t cmnl_nlmsg_hdrlen(void) { return MNL_NLMSG_HDRLEN; }
/// MNL_ATTR_HDRLEN
static inline size_t cmnl_attr_hdrlen(void) { return MNL_ATTR_HDRLEN; }
/// MNL_SOCKET_AUTOPID
static inline unsigned int cmnl_socket_autopid(void) { return MNL_SOCKET_AUTOPID; }
/// MNL_CB_ERROR / MNL_CB_STOP / MNL_CB_OK
static inline int cmnl_cb_error(void) { return MNL_CB_ERROR; }
static inline int cmnl_cb_stop(void) { return MNL_CB_STOP; }
static inline int cmnl_cb_ok(void) { return MNL_CB_OK; }

/// mnl_attr_for_each(attr, nlh, offset): first attribute and iteration step.
static inline struct nlattr *cmnl_attr_first(const struct nlmsghdr *nlh, unsigned int offset) {
    return (struct nlattr *)mnl_nlmsg_get_payload_offset(nlh, offset);
}
static inline int cmnl_attr_ok_in_msg(const struct nlattr *attr, const struct nlmsghdr *nlh) {
    return mnl_attr_ok(attr, (char *)mnl_nlmsg_get_payload_tail(nlh) - (char *)attr);
}
/// mnl_attr_for_each_nested(attr, nest)
static inline struct nlattr *cmnl_attr_first_nested(const struct nlattr *nest) {
    return (struct nlattr *)mnl_attr_get_payload(nest);
}
static inline int cmnl_attr_ok_in_nest(const struct nlattr *attr, const struct nlattr *nest) {
    return mnl_attr_ok(attr, (char *)mnl_attr_get_payload(nest) + mnl_attr_get_payload_len(nest) - (char *)attr);
}

/// NFNL_MSG_TYPE / NFNL_SUBSYS_ID
static inline unsigned short cmnl_nfnl_msg_type(unsigned short type) { return NFNL_MSG_TYPE(type); }
static inline unsigned short cmnl_nfnl_subsys_id(unsigned short type) { return NFNL_SUBSYS_ID(type); }

/// struct mmsghdr (glibc declares it only under _GNU_SOURCE).
struct cmnl_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
/// recvmmsg(2) through syscall(2), which Swift cannot call (variadic).
static inline int cmnl_recvmmsg(int fd, struct cmnl_mmsghdr *msgs, unsigned int n, int flags) {
    return (int)syscall(SYS_recvmmsg, fd, msgs, n, flags, (void *)0);
}
/// ppoll(2) with `mask` in place while it waits; `timeout` NULL waits
/// without a limit.
static inline int cmnl_ppoll(struct pollfd *fds, unsigned int n, const struct timespec *timeout,
                             const sigset_t *mask) {
    return (int)syscall(SYS_ppoll, fds, n, timeout, mask, (size_t)(_NSIG / 8));
}
/// setns(2) for a network namespace (CLONE_NEWNET), which glibc declares
/// only under _GNU_SOURCE.
static inline int cmnl_setns_net(int fd) {
    return (int)syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */);
}

#endif
