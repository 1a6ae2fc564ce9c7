import ArgumentParser
import Foundation
import StratusCompute

extension Stratus {
    /// `stratus image`: images this host can build for its guests.
    struct Image: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build guest images on this host.",
            subcommands: [BuildTiny.self]
        )
    }
}

extension Stratus.Image {
    /// `stratus image build-tiny`: Debian's kernel and a busybox initramfs, booted in seconds.
    struct BuildTiny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "build-tiny",
            abstract: "Build the tiny guest image (Debian's kernel, a busybox initramfs) unless it is built already.",
            discussion: """
                Downloads this Debian release's kernel package with apt-get (once; about a minute), unpacks the
                kernel to an ELF vmlinux that QEMU boots in about 4 s even without KVM, and writes a busybox
                initramfs whose console shows the boot, a banner and a login prompt. The examples' Image
                (examples/images.yaml) points at the default directory; `make run` runs this first.

                Examples:
                  stratus image build-tiny
                  stratus image build-tiny --directory /srv/images/tiny --force
                """
        )

        @Option(help: ArgumentHelp("Where the image is kept.", valueName: "dir"))
        var directory = TinyImage.defaultDirectory

        @Flag(help: "Build again even when an up-to-date image is there.")
        var force = false

        func run() async throws {
            let started = ContinuousClock.now
            let (image, built) = try await reportingErrors { () async throws -> (TinyImage, Bool) in
                do {
                    return try await TinyImage.build(in: directory, force: force)
                } catch {
                    throw CLIError("cannot build the tiny image: \(error)")
                }
            }
            let out = Terminal.standardOutput
            let took = (ContinuousClock.now - started).formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))
            out.line(built ? "tiny image built in \(image.directory) (kernel of \(image.kernelPackage), \(took))" : "tiny image in \(image.directory) is up to date (kernel of \(image.kernelPackage))")
            out.line("  kernel:  \(image.kernel)")
            out.line("  ramdisk: \(image.ramdisk)")
            out.line("  disk:    \(image.disk) (raw)")
            out.line("  cmdline: \(TinyImage.cmdline)")
        }
    }
}
