/// A size an instance can have (Nova's flavor): memory, vCPUs, root disk.
public struct InstanceTypeSpec: SpecBody {
    public static let kind = Kind.instanceType

    public var memoryMB: Int
    public var vcpus: Int
    public var diskGB: Int

    public init(memoryMB: Int, vcpus: Int, diskGB: Int) {
        self.memoryMB = memoryMB
        self.vcpus = vcpus
        self.diskGB = diskGB
    }

    public func validate(_ validator: inout Validator) {
        validator.range(memoryMB, 64...4_194_304, at: [.key("memoryMB")], unit: " MB")
        validator.range(vcpus, 1...1024, at: [.key("vcpus")])
        validator.range(diskGB, 0...65536, at: [.key("diskGB")], unit: " GB")
    }
}
