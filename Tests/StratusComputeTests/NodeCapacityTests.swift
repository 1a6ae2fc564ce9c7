import Foundation
import StratusModel
import Testing

@testable import StratusCompute

/// What a node offers: the KVM decision and the simulated node's capacity.
@Suite struct NodeCapacityTests {
    @Test("KVM is chosen only when /dev/kvm is usable, not nested PVM, and the CPU has vmx or svm")
    func kvmDecision() {
        let real = KVMProbe.Facts(deviceExists: true, deviceReadWritable: true, nestedPVM: false, hardwareVirtualization: true)
        #expect(KVMProbe.decide(real).usable)
        var facts = real
        facts.deviceExists = false
        #expect(KVMProbe.decide(facts) == (false, "/dev/kvm does not exist"))
        facts = real
        facts.deviceReadWritable = false
        #expect(!KVMProbe.decide(facts).usable)
        facts = real
        facts.nestedPVM = true
        #expect(KVMProbe.decide(facts).reason.contains("nested PVM"))
        facts = real
        facts.hardwareVirtualization = false
        #expect(!KVMProbe.decide(facts).usable)
    }

    @Test("the simulated test:///default node reports this host's memory and CPUs, not the driver's 3 GB fixture")
    func simulatedNodeIsThisHost() async throws {
        let capacity = try await LibvirtHypervisor(uri: "test:///default").nodeInfo()
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        let physicalMB = (pages * pageSize) >> 20
        // MemTotal and the physical page count differ by what the kernel reserved: a few percent.
        #expect(abs(capacity.memoryMB - physicalMB) <= max(64, physicalMB / 20), "\(capacity.memoryMB) MB reported, \(physicalMB) MB physical")
        #expect(capacity.vcpus == ProcessInfo.processInfo.activeProcessorCount)
    }
}
