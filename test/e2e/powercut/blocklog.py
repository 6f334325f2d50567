#!/usr/bin/python3
"""A user-space dm-log-writes: one FUSE file that records every write and every flush barrier.

Usage: blocklog.py MOUNTPOINT IMAGE LOG COUNTER

Serves MOUNTPOINT/disk, a file as large as IMAGE whose content lives in IMAGE (read and written in
place). A loop device on MOUNTPOINT/disk turns the block layer's writes into FUSE writes and its
flushes (REQ_OP_FLUSH, and what FUA becomes on a queue without FUA) into FUSE fsyncs, so:

- every write is appended to LOG as b"W", offset (u64 LE), length (u32 LE), then the bytes;
- every fsync is appended to LOG as b"B", the barrier's number (u64 LE, from 1), 0 (u32 LE), and
  the barrier count is stored in COUNTER (8 bytes, u64 LE) before the fsync is answered;
- on unmount LOG ends with b"E", the write count (u64 LE), 0 (u32 LE).

Invariant kept: the daemon serves one request at a time (-s), and the kernel completes a write
only once it is answered, so every write that completed before a flush was issued precedes that
flush's barrier in LOG: the disk "cut at barrier k" is IMAGE's initial content plus every write
before the k-th barrier record. A reader of COUNTER that sees B knows barriers 1..B are in LOG.
"""
import errno
import os
import stat
import struct
import sys

try:
    import fusepy as fuse  # Debian's python3-fusepy
except ImportError:  # pip's fusepy
    import fuse

RECORD = struct.Struct("<cQI")
DISK = "/disk"


class BlockLog(fuse.Operations):
    use_ns = True

    def __init__(self, image, log, counter):
        self.image = os.open(image, os.O_RDWR)
        self.size = os.fstat(self.image).st_size
        self.log = open(log, "wb", buffering=8 << 20)
        self.counter = os.open(counter, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.pwrite(self.counter, struct.pack("<Q", 0), 0)
        self.writes = 0
        self.barriers = 0

    def getattr(self, path, fh=None):
        if path == "/":
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        if path == DISK:
            return dict(st_mode=stat.S_IFREG | 0o600, st_nlink=1, st_size=self.size, st_blocks=(self.size + 511) // 512)
        raise fuse.FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        return [".", "..", DISK[1:]]

    def open(self, path, flags):
        if path != DISK:
            raise fuse.FuseOSError(errno.ENOENT)
        return 0

    def read(self, path, size, offset, fh):
        return os.pread(self.image, min(size, max(0, self.size - offset)), offset)

    def write(self, path, data, offset, fh):
        if offset + len(data) > self.size:
            raise fuse.FuseOSError(errno.ENOSPC)
        os.pwrite(self.image, data, offset)
        self.log.write(RECORD.pack(b"W", offset, len(data)))
        self.log.write(data)
        self.writes += 1
        return len(data)

    def truncate(self, path, length, fh=None):
        if length != self.size:
            raise fuse.FuseOSError(errno.EPERM)

    def fsync(self, path, datasync, fh):
        self.barriers += 1
        self.log.write(RECORD.pack(b"B", self.barriers, 0))
        os.pwrite(self.counter, struct.pack("<Q", self.barriers), 0)
        return 0

    def destroy(self, path):
        self.log.write(RECORD.pack(b"E", self.writes, 0))
        self.log.flush()
        os.fsync(self.log.fileno())
        self.log.close()


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    mountpoint, image, log, counter = argv[1:]
    # big_writes/max_write: without them libfuse 2 splits writes into 4 KiB requests.
    fuse.FUSE(BlockLog(image, log, counter), mountpoint, foreground=True, nothreads=True, allow_other=True, big_writes=True, max_write=131072, fsname="blocklog")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
