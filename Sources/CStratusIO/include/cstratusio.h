#ifndef CSTRATUSIO_H
#define CSTRATUSIO_H

/// Starts writeback of a file range without waiting (Linux sync_file_range with
/// SYNC_FILE_RANGE_WRITE), which Swift's Glibc module does not import. Returns 0 or -1 (errno).
int stratus_start_writeback(int fd, long long offset, long long length);

/// Opens a raw AF_PACKET socket for one ethertype, bound to `interface`, and writes the
/// interface's MAC address into `mac`. Returns the descriptor, or -1 (errno). Frames are then
/// sent with send() (whole Ethernet frames) and read with recv().
int stratus_packet_open(const char *interface, unsigned short ethertype, unsigned char mac[6]);

/// The same, inside the network namespace at `netns` (`/run/netns/NAME`): a short-lived thread
/// enters it and opens the socket, which stays in that namespace; the caller's threads do not move.
int stratus_packet_open_in(const char *netns, const char *interface, unsigned short ethertype, unsigned char mac[6]);

#endif
