import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension FileHandle {
    /// Everything up to end of file, reading again after an interrupted call.
    ///
    /// Foundation's `readDataToEndOfFile()` and `availableData` stop the whole process when a
    /// read fails with `EINTR` (a `try!` inside Foundation): a signal handled on the reading
    /// thread is enough, and one CI run of the suite died that way.
    public func readToEndRetrying() -> Data {
        var data = Data()
        while let chunk = readChunk() { data.append(chunk) }
        return data
    }

    /// What one read returns (waiting until there is something), empty at end of file.
    public func availableRetrying() -> Data { readChunk() ?? Data() }

    /// One read of up to 64 KiB, retried on `EINTR`; nil at end of file or on another error.
    private func readChunk() -> Data? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }
            if count > 0 { return Data(buffer[0..<count]) }
            if count < 0, errno == EINTR { continue }
            return nil
        }
    }
}
