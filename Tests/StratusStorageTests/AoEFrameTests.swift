import Testing

@testable import StratusStorage

/// AoE frames as RECIPES §4 lays them out, built and parsed without a network.
@Suite struct AoEFrameTests {
    let me: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]

    @Test("a broadcast Query Config is 60 bytes: ff…ff, our MAC, 0x88A2, version 1 request, shelf ffff, slot ff, command 1, the tag")
    func queryConfig() {
        let frame = AoE.queryConfig(from: me, tag: 0x0102_0304)
        #expect(frame.count == 60)
        #expect(Array(frame[0..<6]) == AoE.broadcast && Array(frame[6..<12]) == me)
        #expect(Array(frame[12..<24]) == [0x88, 0xA2, 0x10, 0, 0xFF, 0xFF, 0xFF, 1, 1, 2, 3, 4])
        let header = AoE.parseHeader(frame)
        #expect(header?.tag == 0x0102_0304 && header?.shelf == 0xFFFF && header?.isReply == false)
    }

    @Test("READ EXT carries LBA48 (aflags 0x40), the count, command 0x24 and the LBA low byte first")
    func readExt() {
        let frame = AoE.ata(from: me, to: AoE.broadcast, shelf: 7, slot: 3, tag: 9, command: .readExt, lba: 0x0605_0403_0201, count: 2)
        #expect(Array(frame[16..<20]) == [0, 7, 3, 0])
        #expect(Array(frame[24..<36]) == [0x40, 0, 2, 0x24, 1, 2, 3, 4, 5, 6, 0, 0])
    }

    @Test("a Query Config reply and an IDENTIFY reply are read back: buffer count, max sectors, model, serial, LBA48 sectors")
    func replies() {
        var reply = AoE.queryConfig(from: me, tag: 5)
        reply[14] = 0x18  // version 1, reply
        reply.replaceSubrange(24..<32, with: [0, 16, 0x40, 0x0F, 2, 0x10, 0, 2])
        reply += Array("hi".utf8)
        // The frame was padded to 60; a real reply puts the string right after the 8 bytes.
        let trimmed = Array(reply[0..<32]) + Array("hi".utf8)
        #expect(AoE.parseConfig(trimmed) == AoE.Config(bufferCount: 16, firmware: 0x400F, maxSectors: 2, version: 1, string: "hi"))

        var identify = [UInt8](repeating: 0, count: 512)
        func put(_ word: Int, _ value: UInt16) { identify[2 * word] = UInt8(value & 0xFF); identify[2 * word + 1] = UInt8(value >> 8) }
        func text(_ words: Range<Int>, _ string: String) {
            let padded = Array(string.utf8) + [UInt8](repeating: 0x20, count: 2 * words.count - string.utf8.count)
            for (offset, index) in words.enumerated() { put(index, UInt16(padded[2 * offset]) << 8 | UInt16(padded[2 * offset + 1])) }
        }
        text(27..<47, "Coraid EtherDrive vblade")
        text(10..<20, "vol-0000beef")
        put(83, 1 << 10)
        put(100, 0)
        put(101, 2)  // 131,072 sectors
        let identity = AoE.parseIdentity(identify[...])
        #expect(identity == AoE.Identity(model: "Coraid EtherDrive vblade", serial: "vol-0000beef", sectors: 131_072))
        #expect(identity?.bytes == 64 << 20)
        #expect(AoE.parseIdentity(identify[0..<100]) == nil, "a short IDENTIFY is no identity")
        #expect(AoE.parseHeader(Array(reply[0..<20])) == nil, "a frame shorter than the AoE header is not one")
    }
}
