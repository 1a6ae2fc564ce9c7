import Foundation

/// A libvirt test-driver URI of a node of its own (`test:///path.xml`). Every in-process test
/// needs one: `test:///default` is one state shared by the whole test process, where one test's
/// controller would sweep another's domains as orphans.
public func privateNodeURI(memoryMB: Int = 8192, cpus: Int = 4) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-node-\(UUID().uuidString).xml").path
    try "<node><cpu><mhz>2000</mhz><model>t</model><nodes>1</nodes><sockets>1</sockets><cores>\(cpus)</cores><threads>1</threads></cpu><memory>\(memoryMB * 1024)</memory></node>"
        .write(toFile: path, atomically: true, encoding: .utf8)
    return "test://\(path)"
}
