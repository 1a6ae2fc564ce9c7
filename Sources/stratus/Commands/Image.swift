import ArgumentParser
import Foundation
import StratusCompute
import StratusObjectStore

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
                Downloads this Debian release's kernel package with apt-get (once; about a minute), unpacks the \
                kernel to an ELF vmlinux that QEMU boots in about 4 s even without KVM, and writes a busybox \
                initramfs whose console shows the boot, a banner and a login prompt.

                With --upload s3://BUCKET/PREFIX it also puts the kernel, ramdisk and disk into the object \
                store of the data directory as PREFIXvmlinux, PREFIXinitrd.cpio and PREFIXdisk.raw (creating \
                the bucket for the project when it does not exist; an object that already holds the same bytes \
                is left alone), so an Image can name them with s3:// and every node fetches them from there. \
                `make run` runs this first with --upload s3://images/tiny/ -p acme, which is where the \
                examples' Image (examples/images.yaml) finds them.

                Examples:
                  stratus image build-tiny
                  stratus image build-tiny --upload s3://images/tiny/ -p acme \\
                    --data-dir .stratus
                  stratus image build-tiny --directory /srv/images/tiny --force
                """
        )

        @Option(help: ArgumentHelp("Also put the image into the object store: s3://BUCKET/PREFIX (needs -p).", valueName: "s3-url"))
        var upload: String?

        @Option(name: .shortAndLong, help: "The project that owns the bucket (with --upload).")
        var project: String?

        @OptionGroup var storeOptions: StoreOptions

        @Option(help: ArgumentHelp("Where the image is kept.", valueName: "dir"))
        var directory = TinyImage.defaultDirectory

        @Flag(help: "Build again even when an up-to-date image is there.")
        var force = false

        func validate() throws {
            guard let upload else {
                if project != nil { throw ValidationError("-p/--project names the bucket's owner; it needs --upload") }
                return
            }
            guard Self.location(upload) != nil else { throw ValidationError("--upload: expected s3://BUCKET/PREFIX (e.g. s3://images/tiny/), got \"\(upload)\"") }
            guard project != nil else { throw ValidationError("--upload needs -p PROJECT, the project that owns the bucket") }
            if storeOptions.resolvedServer != nil {
                throw ValidationError("--upload writes to the data directory (--data-dir) and cannot go through --server; upload through S3 instead: aws --endpoint-url \"$S3_URL\" s3 cp FILE s3://BUCKET/KEY")
            }
        }

        /// The bucket and key prefix of `s3://bucket/prefix`.
        static func location(_ url: String) -> (bucket: String, prefix: String)? {
            guard url.hasPrefix("s3://") else { return nil }
            let rest = url.dropFirst(5)
            let bucket = rest.prefix { $0 != "/" }
            guard !bucket.isEmpty else { return nil }
            return (String(bucket), String(rest.dropFirst(bucket.count + 1)))
        }

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
            guard let upload, let project, let (bucket, prefix) = Self.location(upload) else { return }
            try reportingErrors {
                let store = try storeOptions.openStore()
                for (file, name) in [(image.kernel, "vmlinux"), (image.ramdisk, "initrd.cpio"), (image.disk, "disk.raw")] {
                    let key = prefix + name
                    let outcome: ObjectImport.Outcome
                    do {
                        outcome = try ObjectImport.put(file: file, bucket: bucket, key: key, project: project, store: store, dataDirectory: storeOptions.resolvedDataDir)
                    } catch {
                        throw CLIError("cannot put \(file) into s3://\(bucket)/\(key): \(error)")
                    }
                    switch outcome {
                    case .stored(let size, _): out.line("  stored s3://\(bucket)/\(key) (\(size) bytes, project \(project))")
                    case .unchanged(let size, _): out.line("  s3://\(bucket)/\(key) is up to date (\(size) bytes)")
                    }
                }
            }
        }
    }
}
