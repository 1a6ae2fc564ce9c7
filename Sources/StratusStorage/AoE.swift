import CStratusIO
import Foundation

/// ATA over Ethernet (AoE, Coraid's protocol that vblade speaks): the frames the wire check and
/// `stratus aoe` send and read. Big-endian, after a 14-byte Ethernet header of type 0x88A2:
///
/// - header (10 bytes): `ver<<4 | flags` (a request is 0x10; a reply has 0x08, an error 0x04),
///   error, shelf (16 bits), slot, command (0 ATA, 1 Query Config), tag (32 bits, echoed);
/// - Query Config (8 bytes, then the config string): buffer count, firmware version, the most
///   sectors one ATA frame may carry, `aoever<<4 | ccmd`, config string length;
/// - ATA (12 bytes, then data): aflags (0x40 LBA48, 0x01 write), feature/error, sector count,
///   command/status (0xEC IDENTIFY, 0x24 READ EXT, 0x34 WRITE EXT), LBA (6 bytes, low first), 2 reserved.
///
/// A request is padded to Ethernet's 60-byte minimum; replies over veth may be shorter (vblade
/// does not pad), so nothing here insists on 60 bytes when reading.
public enum AoE {
    public static let ethertype: UInt16 = 0x88A2
    /// Shelf and slot that address every target (Query Config's broadcast).
    public static let everyShelf: UInt16 = 0xFFFF
    public static let everySlot: UInt8 = 0xFF
    public static let broadcast: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
    public static let sectorSize = 512

    enum Command: UInt8 {
        case ata = 0
        case queryConfig = 1
    }

    enum ATACommand: UInt8 {
        case identify = 0xEC
        case readExt = 0x24
        case writeExt = 0x34
    }

    /// The fields common to every AoE frame, with the Ethernet addresses.
    struct Header: Equatable {
        var destination: [UInt8]
        var source: [UInt8]
        var flags: UInt8
        var error: UInt8
        var shelf: UInt16
        var slot: UInt8
        var command: UInt8
        var tag: UInt32

        var isReply: Bool { flags & 0x08 != 0 }
        var isError: Bool { flags & 0x04 != 0 }
    }

    static let headerLength = 14 + 10

    static func header(_ header: Header, into frame: inout [UInt8]) {
        frame += header.destination + header.source
        frame += [UInt8(ethertype >> 8), UInt8(ethertype & 0xFF)]
        frame += [header.flags, header.error, UInt8(header.shelf >> 8), UInt8(header.shelf & 0xFF), header.slot, header.command]
        frame += [UInt8(header.tag >> 24), UInt8((header.tag >> 16) & 0xFF), UInt8((header.tag >> 8) & 0xFF), UInt8(header.tag & 0xFF)]
    }

    static func padded(_ frame: [UInt8]) -> [UInt8] { frame.count >= 60 ? frame : frame + [UInt8](repeating: 0, count: 60 - frame.count) }

    /// A Query Config request (read the config string) to one target, or to all with the broadcast address.
    static func queryConfig(from source: [UInt8], to destination: [UInt8] = broadcast, shelf: UInt16 = everyShelf, slot: UInt8 = everySlot, tag: UInt32) -> [UInt8] {
        var frame: [UInt8] = []
        header(Header(destination: destination, source: source, flags: 0x10, error: 0, shelf: shelf, slot: slot, command: Command.queryConfig.rawValue, tag: tag), into: &frame)
        frame += [UInt8](repeating: 0, count: 8)
        return padded(frame)
    }

    /// An ATA request: IDENTIFY (no LBA), or READ EXT / WRITE EXT of `count` sectors at `lba` (LBA48).
    static func ata(from source: [UInt8], to destination: [UInt8], shelf: UInt16, slot: UInt8, tag: UInt32, command: ATACommand, lba: UInt64 = 0, count: UInt8 = 1, data: [UInt8] = []) -> [UInt8] {
        var frame: [UInt8] = []
        header(Header(destination: destination, source: source, flags: 0x10, error: 0, shelf: shelf, slot: slot, command: Command.ata.rawValue, tag: tag), into: &frame)
        let aflags: UInt8 = command == .identify ? 0 : 0x40 | (command == .writeExt ? 0x01 : 0)
        frame += [aflags, 0, count, command.rawValue]
        for byte in 0..<6 { frame.append(UInt8((lba >> (8 * UInt64(byte))) & 0xFF)) }
        frame += [0, 0]
        frame += data
        return padded(frame)
    }

    /// The header of a received frame, or nil when it is not a whole AoE header.
    static func parseHeader(_ frame: [UInt8]) -> Header? {
        guard frame.count >= headerLength, frame[12] == UInt8(ethertype >> 8), frame[13] == UInt8(ethertype & 0xFF) else { return nil }
        return Header(
            destination: Array(frame[0..<6]), source: Array(frame[6..<12]), flags: frame[14], error: frame[15],
            shelf: UInt16(frame[16]) << 8 | UInt16(frame[17]), slot: frame[18], command: frame[19],
            tag: UInt32(frame[20]) << 24 | UInt32(frame[21]) << 16 | UInt32(frame[22]) << 8 | UInt32(frame[23]))
    }

    /// What a Query Config reply says about a target.
    struct Config: Equatable {
        var bufferCount: UInt16
        var firmware: UInt16
        var maxSectors: UInt8
        var version: UInt8
        var string: String
    }

    static func parseConfig(_ frame: [UInt8]) -> Config? {
        let base = headerLength
        guard frame.count >= base + 8 else { return nil }
        let length = Int(UInt16(frame[base + 6]) << 8 | UInt16(frame[base + 7]))
        let end = min(frame.count, base + 8 + length)
        return Config(
            bufferCount: UInt16(frame[base]) << 8 | UInt16(frame[base + 1]), firmware: UInt16(frame[base + 2]) << 8 | UInt16(frame[base + 3]),
            maxSectors: frame[base + 4], version: frame[base + 5] >> 4, string: String(decoding: frame[(base + 8)..<end], as: UTF8.self))
    }

    /// The ATA status byte and the data after the ATA header of a reply.
    static func parseATA(_ frame: [UInt8]) -> (status: UInt8, data: ArraySlice<UInt8>)? {
        let base = headerLength
        guard frame.count >= base + 12 else { return nil }
        return (frame[base + 3], frame[(base + 12)...])
    }

    /// What ATA IDENTIFY DEVICE reports: the model, the serial and the capacity in sectors
    /// (words 100–103 when LBA48 is supported, word 83 bit 10; words 60–61 otherwise).
    public struct Identity: Sendable, Equatable, Codable {
        public var model: String
        public var serial: String
        public var sectors: UInt64
        public var bytes: UInt64 { sectors * UInt64(AoE.sectorSize) }
    }

    static func parseIdentity(_ data: ArraySlice<UInt8>) -> Identity? {
        guard data.count >= 512 else { return nil }
        let bytes = Array(data.prefix(512))
        func word(_ index: Int) -> UInt64 { UInt64(bytes[2 * index]) | UInt64(bytes[2 * index + 1]) << 8 }
        /// ATA strings hold two characters per word, the first in the high byte.
        func text(_ words: Range<Int>) -> String {
            var characters: [UInt8] = []
            for index in words { characters += [bytes[2 * index + 1], bytes[2 * index]] }
            return String(decoding: characters, as: UTF8.self).trimmingCharacters(in: .whitespaces.union(.controlCharacters))
        }
        let lba48 = word(83) & (1 << 10) != 0
        let sectors = lba48 ? word(100) | word(101) << 16 | word(102) << 32 | word(103) << 48 : word(60) | word(61) << 16
        return Identity(model: text(27..<47), serial: text(10..<20), sectors: sectors)
    }
}

/// A target found on the wire: its address, what Query Config said and what IDENTIFY reported.
public struct AoETarget: Sendable, Equatable, Codable {
    public var shelf: UInt16
    public var slot: UInt8
    /// The MAC address the target answered from.
    public var mac: String
    public var bufferCount: UInt16
    public var firmware: UInt16
    public var maxSectors: UInt8
    public var identity: AoE.Identity?

    /// `e<shelf>.<slot>`, as the aoe driver names the device (`/dev/etherd/e1.2`).
    public var address: String { "e\(shelf).\(slot)" }
}

/// Why an AoE exchange failed.
public struct AoEError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An AoE initiator on a raw `AF_PACKET` socket bound to one interface: discovers targets with
/// Query Config, identifies them with ATA IDENTIFY and reads sectors with READ EXT. Blocking
/// (the wire check runs it off the cooperative pool); its exchanges take turns (a lock).
public final class AoEClient: @unchecked Sendable {
    public let interface: String
    let descriptor: Int32
    let mac: [UInt8]
    private var nextTag: UInt32 = UInt32.random(in: 1...0x7FFF_FFFF)
    private let lock = NSLock()

    /// Opens the socket on `interface`; in the network namespace named `namespace` (`ip netns`)
    /// when given, else in the caller's. Needs CAP_NET_RAW.
    public init(interface: String, namespace: String? = nil) throws {
        var address = [UInt8](repeating: 0, count: 6)
        let descriptor: Int32 = address.withUnsafeMutableBufferPointer { buffer in
            if let namespace { return stratus_packet_open_in("/run/netns/\(namespace)", interface, AoE.ethertype, buffer.baseAddress) }
            return stratus_packet_open(interface, AoE.ethertype, buffer.baseAddress)
        }
        guard descriptor >= 0 else {
            throw AoEError("cannot open an AoE socket on \(interface)\(namespace.map { " in namespace \($0)" } ?? ""): \(String(cString: strerror(errno)))")
        }
        self.interface = interface
        self.descriptor = descriptor
        self.mac = address
    }

    deinit { close(descriptor) }

    func tag() -> UInt32 {
        lock.lock()
        defer { lock.unlock() }
        nextTag = nextTag == 0x7FFF_FFFF ? 1 : nextTag + 1
        return nextTag
    }

    func send(_ frame: [UInt8]) throws {
        let sent = frame.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == frame.count else { throw AoEError("cannot send on \(interface): \(String(cString: strerror(errno)))") }
    }

    /// Frames that answer `tag` until `deadline` (or until `enough` says stop).
    func replies(tag: UInt32, until deadline: ContinuousClock.Instant, enough: ([UInt8], AoE.Header) -> Bool) throws {
        var buffer = [UInt8](repeating: 0, count: 9216)
        while true {
            let left = deadline - ContinuousClock.now
            let milliseconds = max(0, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw AoEError("cannot wait for replies on \(interface): \(String(cString: strerror(errno)))")
            }
            if ready == 0 { return }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { continue }
            let frame = Array(buffer[0..<count])
            guard let header = AoE.parseHeader(frame), header.isReply, header.tag == tag, header.destination == mac || header.destination == AoE.broadcast else { continue }
            if enough(frame, header) { return }
        }
    }

    /// One exchange at a time: replies are read from one socket, so two at once would take each other's frames.
    private let exchange = NSLock()

    /// Every target that answers Query Config within `timeout` (all of them, or one shelf and slot),
    /// each identified with ATA IDENTIFY.
    public func discover(shelf: UInt16 = AoE.everyShelf, slot: UInt8 = AoE.everySlot, timeout: Duration = .milliseconds(500)) throws -> [AoETarget] {
        try exchange.withLock { try discoverLocked(shelf: shelf, slot: slot, timeout: timeout) }
    }

    private func discoverLocked(shelf: UInt16, slot: UInt8, timeout: Duration) throws -> [AoETarget] {
        let tag = tag()
        try send(AoE.queryConfig(from: mac, shelf: shelf, slot: slot, tag: tag))
        var found: [AoETarget] = []
        let single = shelf != AoE.everyShelf && slot != AoE.everySlot
        try replies(tag: tag, until: .now + timeout) { frame, header in
            guard header.command == AoE.Command.queryConfig.rawValue, !header.isError, let config = AoE.parseConfig(frame) else { return false }
            if !found.contains(where: { $0.shelf == header.shelf && $0.slot == header.slot }) {
                found.append(AoETarget(shelf: header.shelf, slot: header.slot, mac: Self.format(header.source), bufferCount: config.bufferCount, firmware: config.firmware, maxSectors: config.maxSectors))
            }
            return single
        }
        for index in found.indices {
            found[index].identity = try identifyLocked(found[index], timeout: timeout)
        }
        return found.sorted { ($0.shelf, $0.slot) < ($1.shelf, $1.slot) }
    }

    /// ATA IDENTIFY DEVICE of one target; nil when it does not answer within `timeout`.
    public func identify(_ target: AoETarget, timeout: Duration = .milliseconds(500)) throws -> AoE.Identity? {
        try exchange.withLock { try identifyLocked(target, timeout: timeout) }
    }

    private func identifyLocked(_ target: AoETarget, timeout: Duration) throws -> AoE.Identity? {
        let tag = tag()
        try send(AoE.ata(from: mac, to: Self.parse(target.mac), shelf: target.shelf, slot: target.slot, tag: tag, command: .identify))
        var identity: AoE.Identity?
        try replies(tag: tag, until: .now + timeout) { frame, header in
            guard header.command == AoE.Command.ata.rawValue, header.shelf == target.shelf, header.slot == target.slot, !header.isError, let ata = AoE.parseATA(frame) else { return false }
            identity = AoE.parseIdentity(ata.data)
            return true
        }
        return identity
    }

    /// `count` sectors from `lba` (at most the target's `maxSectors`).
    public func read(_ target: AoETarget, lba: UInt64, count: UInt8, timeout: Duration = .milliseconds(500)) throws -> [UInt8] {
        guard count > 0 else { throw AoEError("a read needs at least one sector") }
        return try exchange.withLock { try readLocked(target, lba: lba, count: count, timeout: timeout) }
    }

    private func readLocked(_ target: AoETarget, lba: UInt64, count: UInt8, timeout: Duration) throws -> [UInt8] {
        let tag = tag()
        try send(AoE.ata(from: mac, to: Self.parse(target.mac), shelf: target.shelf, slot: target.slot, tag: tag, command: .readExt, lba: lba, count: count))
        var data: [UInt8]?
        var failure: String?
        try replies(tag: tag, until: .now + timeout) { frame, header in
            guard header.command == AoE.Command.ata.rawValue, header.shelf == target.shelf, header.slot == target.slot, let ata = AoE.parseATA(frame) else { return false }
            if header.isError || ata.status & 0x01 != 0 { failure = "error \(header.error), ATA status \(ata.status)" } else { data = Array(ata.data.prefix(Int(count) * AoE.sectorSize)) }
            return true
        }
        if let failure { throw AoEError("\(target.address) refused a read of LBA \(lba): \(failure)") }
        guard let data else { throw AoEError("\(target.address) did not answer a read of LBA \(lba) within \(timeout)") }
        guard data.count == Int(count) * AoE.sectorSize else { throw AoEError("\(target.address) answered a read of \(count) sectors at LBA \(lba) with \(data.count) bytes") }
        return data
    }

    static func format(_ mac: [UInt8]) -> String { mac.map { String(format: "%02x", $0) }.joined(separator: ":") }

    static func parse(_ mac: String) -> [UInt8] { mac.split(separator: ":").compactMap { UInt8($0, radix: 16) } }

    /// Reads `sectors` sectors from `lba` with up to `window` READ EXT requests in flight (vblade
    /// answers as many as its buffer count), `target.maxSectors` per frame, and hands each piece
    /// to `take` in order of arrival with its LBA. A request unanswered for `timeout` is sent again.
    public func readSequential(_ target: AoETarget, lba: UInt64 = 0, sectors: UInt64, window: Int = 16, timeout: Duration = .milliseconds(200),
                               take: (_ lba: UInt64, _ bytes: ArraySlice<UInt8>) -> Void) throws {
        try exchange.withLock {
            let perFrame = UInt64(max(1, target.maxSectors))
            let destination = Self.parse(target.mac)
            var next = lba
            let end = lba + sectors
            var inFlight: [UInt32: (lba: UInt64, count: UInt8, sent: ContinuousClock.Instant)] = [:]
            var done: UInt64 = 0
            func send(_ start: UInt64, _ count: UInt8) throws {
                let tag = tag()
                try self.send(AoE.ata(from: mac, to: destination, shelf: target.shelf, slot: target.slot, tag: tag, command: .readExt, lba: start, count: count))
                inFlight[tag] = (start, count, .now)
            }
            func fill() throws {
                while inFlight.count < max(1, window), next < end {
                    let count = UInt8(min(perFrame, end - next))
                    try send(next, count)
                    next += UInt64(count)
                }
            }
            try fill()
            var buffer = [UInt8](repeating: 0, count: 9216)
            var idle = ContinuousClock.now
            while done < sectors {
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                let ready = poll(&poller, 1, 50)
                if ready < 0 {
                    if errno == EINTR { continue }
                    throw AoEError("cannot wait for replies on \(interface): \(String(cString: strerror(errno)))")
                }
                if ready > 0 {
                    let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                    if count > 0, let header = AoE.parseHeader(Array(buffer[0..<min(count, AoE.headerLength)])), header.isReply,
                        header.shelf == target.shelf, header.slot == target.slot, let request = inFlight[header.tag]
                    {
                        let bytes = Int(request.count) * AoE.sectorSize
                        guard !header.isError, count >= AoE.headerLength + 12 + bytes else {
                            throw AoEError("\(target.address) refused a read of LBA \(request.lba) (error \(header.error))")
                        }
                        inFlight[header.tag] = nil
                        take(request.lba, buffer[(AoE.headerLength + 12)..<(AoE.headerLength + 12 + bytes)])
                        done += UInt64(request.count)
                        idle = .now
                        try fill()
                    }
                }
                // Lost frames: send what waited too long again (under a new tag).
                let now = ContinuousClock.now
                for (tag, request) in inFlight where now - request.sent > timeout {
                    inFlight[tag] = nil
                    try send(request.lba, request.count)
                }
                if now - idle > .seconds(10) { throw AoEError("\(target.address) stopped answering reads at \(done) of \(sectors) sectors") }
            }
        }
    }
}
