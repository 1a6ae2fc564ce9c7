#ifndef CSTRATUSIO_H
#define CSTRATUSIO_H

/// Starts writeback of a file range without waiting (Linux sync_file_range with
/// SYNC_FILE_RANGE_WRITE), which Swift's Glibc module does not import. Returns 0 or -1 (errno).
int stratus_start_writeback(int fd, long long offset, long long length);

#endif
