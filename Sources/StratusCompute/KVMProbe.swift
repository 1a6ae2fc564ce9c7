import Foundation

/// Whether KVM can really run guests on this host, which decides `kvm` or `qemu` (TCG) domains.
///
/// `/dev/kvm` existing is not enough: nested PVM (`kvm_pvm`, as on this project's build
/// machines) opens and even starts a domain, whose stock guest kernel then hangs silently
/// (RECIPES §0).
enum KVMProbe {
    /// What the decision reads from the host.
    struct Facts: Equatable {
        var deviceExists: Bool
        var deviceReadWritable: Bool
        /// The `kvm_pvm` module is loaded (nested PVM).
        var nestedPVM: Bool
        /// The CPU has hardware virtualization (`vmx` or `svm` in /proc/cpuinfo).
        var hardwareVirtualization: Bool

        static func host() -> Facts {
            let manager = FileManager.default
            let modules = (try? String(contentsOfFile: "/proc/modules", encoding: .utf8)) ?? ""
            let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
                .split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ") ?? []
            return Facts(
                deviceExists: manager.fileExists(atPath: "/dev/kvm"),
                deviceReadWritable: access("/dev/kvm", R_OK | W_OK) == 0,
                nestedPVM: manager.fileExists(atPath: "/sys/module/kvm_pvm") || modules.contains("kvm_pvm"),
                hardwareVirtualization: flags.contains("vmx") || flags.contains("svm")
            )
        }
    }

    /// `kvm` is used only when every fact says it works; the reason names the one that did not.
    static func decide(_ facts: Facts) -> (usable: Bool, reason: String) {
        guard facts.deviceExists else { return (false, "/dev/kvm does not exist") }
        guard facts.deviceReadWritable else { return (false, "/dev/kvm is not read-writable by this user") }
        guard !facts.nestedPVM else { return (false, "/dev/kvm is nested PVM (kvm_pvm), which cannot run stock guests") }
        guard facts.hardwareVirtualization else { return (false, "the CPU has no vmx/svm flag") }
        return (true, "/dev/kvm is usable")
    }
}
