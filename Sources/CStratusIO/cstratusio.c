#define _GNU_SOURCE
#include <fcntl.h>
#include "cstratusio.h"

int stratus_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
}

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_packet.h>

int stratus_packet_open(const char *interface, unsigned short ethertype, unsigned char mac[6]) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ethertype));
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    if (strlen(interface) >= sizeof request.ifr_name) { close(fd); errno = ENAMETOOLONG; return -1; }
    strcpy(request.ifr_name, interface);
    if (ioctl(fd, SIOCGIFINDEX, &request) < 0) { int saved = errno; close(fd); errno = saved; return -1; }
    int index = request.ifr_ifindex;
    if (ioctl(fd, SIOCGIFHWADDR, &request) < 0) { int saved = errno; close(fd); errno = saved; return -1; }
    memcpy(mac, request.ifr_hwaddr.sa_data, 6);
    struct sockaddr_ll address;
    memset(&address, 0, sizeof address);
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ethertype);
    address.sll_ifindex = index;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) { int saved = errno; close(fd); errno = saved; return -1; }
    return fd;
}

#include <pthread.h>
#include <sched.h>

struct stratus_packet_request {
    const char *netns;
    const char *interface;
    unsigned short ethertype;
    unsigned char *mac;
    int fd;
    int error;
};

static void *stratus_packet_open_thread(void *argument) {
    struct stratus_packet_request *request = argument;
    int ns = open(request->netns, O_RDONLY | O_CLOEXEC);
    if (ns < 0) { request->error = errno; return NULL; }
    if (setns(ns, CLONE_NEWNET) < 0) { request->error = errno; close(ns); return NULL; }
    close(ns);
    request->fd = stratus_packet_open(request->interface, request->ethertype, request->mac);
    if (request->fd < 0) request->error = errno;
    return NULL;
}

int stratus_packet_open_in(const char *netns, const char *interface, unsigned short ethertype, unsigned char mac[6]) {
    struct stratus_packet_request request = { netns, interface, ethertype, mac, -1, 0 };
    pthread_t thread;
    int failed = pthread_create(&thread, NULL, stratus_packet_open_thread, &request);
    if (failed) { errno = failed; return -1; }
    pthread_join(thread, NULL);
    if (request.fd < 0) errno = request.error;
    return request.fd;
}
